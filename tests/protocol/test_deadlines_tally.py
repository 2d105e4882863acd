"""Phases, deadlines and the tally: the rules both the contract and the nodes follow."""
import pytest

from fedfabric_protocol import deadlines as dl
from fedfabric_protocol.deadlines import Activity
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.records import Ballot, Deadlines, Result, RoundRecord
from fedfabric_protocol.states import Exchange, Phase, Privacy, RoundState
from fedfabric_protocol.tally import VoteWeight, draw_leader, electorate, tally

ORGS = ("A", "B", "C")
H = "ab" * 32


def rec(state=RoundState.COLLECTING, privacy=Privacy.SECURE, exchange=Exchange.ENDORSED, participants=ORGS):
    return RoundRecord(job_id="j", round=1, state=state, privacy=privacy, exchange=exchange, leader="A",
                       leader_draw={}, base_version=0, base_hash=H, stakes={m: 100 for m in ORGS}, quorum=(2, 3),
                       min_participants=2, deadlines=Deadlines(60, 100, 200, 300), participants=participants)


def act(submitted=(), reveals=None, voted=(), registered=()):
    return Activity(frozenset(registered), frozenset(submitted), {k: frozenset(v) for k, v in (reveals or {}).items()},
                    frozenset(voted))


def test_phases_of_a_round():
    r = rec()
    assert dl.phase(rec(RoundState.REGISTRATION), act(registered="AB"), 50) is Phase.REGISTERING
    assert dl.phase(rec(RoundState.REGISTRATION), act(registered="ABC"), 50) is Phase.STARTING
    assert dl.phase(rec(RoundState.REGISTRATION), act(registered="A"), 61) is Phase.STARTING
    assert dl.phase(r, act("AB"), 100) is Phase.SUBMITTING
    assert dl.phase(r, act("ABC"), 100) is Phase.VOTING
    assert dl.phase(r, act("ABC", voted="AB"), 150) is Phase.VOTING
    assert dl.phase(r, act("ABC", voted="ABC"), 150) is Phase.CLOSING
    assert dl.phase(r, act("ABC", voted="A"), 301) is Phase.CLOSING
    assert dl.phase(r, act("AB"), 101) is Phase.REVEALING
    assert dl.phase(r, act("AB", {"A": "C"}), 150) is Phase.REVEALING
    assert dl.phase(r, act("AB", {"A": "C", "B": "C"}), 150) is Phase.VOTING
    assert dl.phase(r, act("AB", {"A": "C"}), 201) is Phase.CLOSING      # reveals overdue: the round fails
    assert dl.phase(rec(privacy=Privacy.CLEAR), act("AB"), 101) is Phase.VOTING
    assert dl.phase(rec(RoundState.FAILED), act(), 0) is Phase.CLOSED
    assert dl.closing_reason(r, act("A"), 101) == "only 1 updates submitted, 2 required"
    assert dl.closing_reason(r, act("AB", {"A": "C"}), 201) == "B did not reveal their seeds for C by 200"
    assert dl.closing_reason(r, act("ABC"), 150) is None


def _ballot(contributors):
    return Ballot(True, Result(H, H, tuple(contributors)), {})


def test_vote_rules():
    r = rec()
    with pytest.raises(ProtocolError, match="collecting until 100"):
        dl.check_vote(r, "A", _ballot("AB"), act("AB"), 100)
    with pytest.raises(ProtocolError, match="waiting for seed reveals from A, B for C"):
        dl.check_vote(r, "A", _ballot("AB"), act("AB"), 101)
    dl.check_vote(r, "A", _ballot("AB"), act("AB", {"A": "C", "B": "C"}), 101)
    with pytest.raises(ProtocolError, match="every submitted update counts"):
        dl.check_vote(r, "A", _ballot("AB"), act("ABC"), 101)
    nodes = rec(exchange=Exchange.NODES)
    dl.check_vote(nodes, "A", _ballot("AB"), act("ABC", {"A": "C", "B": "C"}), 50)
    with pytest.raises(ProtocolError, match="no stake"):
        dl.check_vote(r, "Z", _ballot("AB"), act("ABC"), 101)
    with pytest.raises(ProtocolError, match="vote window of round 1 closed at 300"):
        dl.check_vote(r, "A", _ballot("ABC"), act("ABC"), 301)


def test_tally_weighs_the_snapshot_not_the_ballot_and_leaves_suspended_out():
    st = {"A": 100, "B": 100, "C": 95}
    yes = VoteWeight(True, "x")
    t = tally(st, (2, 3), {"A": yes, "C": yes})
    assert t.winner is None and t.approve_by_result == {"x": 195} and t.reachable   # 195*3 < 2*295
    t = tally(st, (2, 3), {"A": yes, "B": yes})
    assert t.winner == "x" and t.pending_stake == 95
    t = tally(st, (2, 3), {"A": yes, "C": yes}, excluded={"B"})
    assert t.winner == "x" and t.total_stake == 195 and t.excluded == ("B",)
    t = tally(st, (2, 3), {"A": yes, "B": VoteWeight(True, "y"), "C": VoteWeight(False, None)})
    assert t.winner is None and not t.reachable
    assert tally(st, (2, 3), {"Z": yes}).approve_by_result == {}


def test_leader_draw_is_stake_weighted_and_deterministic():
    st = {"A": 1, "B": 1, "C": 1000}
    wins = [draw_leader(st, f"{i:064x}", "j", 1)["leader"] for i in range(200)]
    assert wins.count("C") > 180 and draw_leader(st, H, "j", 1) == draw_leader(dict(reversed(st.items())), H, "j", 1)
    with pytest.raises(ProtocolError, match="no active stake"):
        draw_leader({"A": 0}, H, "j", 1)
    orgs = {"A": {"stake": 5, "status": "active"}, "B": {"stake": 5, "status": "suspended"},
            "C": {"stake": 0, "status": "active"}}
    assert electorate(["A", "B", "C", "D"], orgs) == {"A": 5}


def test_round_record_round_trips():
    r = rec()
    assert RoundRecord.from_dict(r.to_dict()) == r
    b = Ballot.from_dict({"approve": True, "aggregate_hash": H, "model_hash": H, "contributors": ["B", "A"],
                          "metrics": {"acc": 1}, "next_public_key": H})
    assert b.result.contributors == ("A", "B") and Ballot.from_dict(b.to_dict()) == b
    assert Ballot.from_dict({"approve": False}).result is None
