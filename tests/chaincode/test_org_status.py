"""Org status: quorum-approved suspension and reinstatement, with history and effects."""
import numpy as np
import pytest

from fedfabric_cc import policy

from . import identities as ids
from .harness import ORGS, Ledger, init, job_spec, meta_for
from .rounds_helper import Consortium, deltas_for

A, T = ids.admin, ids.trainer
KEY = "33" * 32


@pytest.fixture
def led():
    led = Ledger()
    init(led)
    led.call(A(ORGS[0]), "create_job", job_spec())
    return led


def _suspend(led: Ledger, msp: str = "Org3MSP", pid: str = "s1", by=ORGS[:2]) -> dict:
    p = led.call(A(by[0]), "propose_status_change", pid, msp, "suspended", "failed the data audit")
    for m in by[1:]:
        p = led.call(A(m), "approve_status_change", pid)
    return p


def test_suspension_needs_the_stake_quorum_and_is_recorded(led):
    p = led.call(A(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "suspended", "failed the data audit")
    assert p["status"] == "pending" and p["new_status"] == "suspended" and p["approvals"] == ["Org1MSP"]
    assert led.last_event.name == "StatusChangeProposed"
    assert led.call(ids.auditor(ORGS[0]), "get_org", "Org3MSP")["status"] == "active"
    p = led.call(A(ORGS[1]), "approve_status_change", "s1")
    assert p["status"] == "applied" and p["approvals"] == ["Org1MSP", "Org2MSP"]
    ev = led.last_event
    assert ev.name == "OrgStatusChanged" and ev.json()["new_status"] == "suspended"
    assert ev.json()["policy"]["text"] == "AND('Org1MSP.peer','Org2MSP.peer')"
    org = led.call(ids.auditor(ORGS[0]), "get_org", "Org3MSP")
    assert org["status"] == "suspended" and org["stake"] == 100
    hist = led.call(ids.auditor(ORGS[0]), "org_history", "Org3MSP")[-1]
    assert (hist["field"], hist["before"], hist["after"], hist["delta"], hist["reason"]) == \
        ("status", "active", "suspended", 0, "status-change")
    assert hist["ref"] == {"proposal_id": "s1"}
    # the endorsement policy drops the suspended org, on the chaincode record and on the job key
    pol = led.call(ids.auditor(ORGS[0]), "get_policy")
    assert pol["classes"] == [{"stake": 100, "orgs": ["Org1MSP", "Org2MSP"]}] and pol["vectors"] == [[2]]
    jk = led.stub.create_composite_key("job", ["job1"])
    assert policy.decode_envelope(led.stub.vparams[jk]) == (2, ("Org1MSP", "Org2MSP"))
    history = led.call(ids.auditor(ORGS[0]), "key_history", "statusprop", ["s1"])
    assert [x["value"]["status"] for x in history] == ["applied", "pending"]


def test_reinstatement_restores_the_org_and_the_policy(led):
    _suspend(led)
    p = led.call(A(ORGS[1]), "propose_status_change", "r1", "Org3MSP", "active", "audit passed")
    p = led.call(A(ORGS[0]), "approve_status_change", "r1")
    assert p["status"] == "applied"
    assert led.call(ids.auditor(ORGS[0]), "get_org", "Org3MSP")["status"] == "active"
    assert led.call(ids.auditor(ORGS[0]), "get_policy")["classes"] == [{"stake": 100, "orgs": ORGS}]
    fields = [(e["field"], e["after"]) for e in led.call(ids.auditor(ORGS[0]), "org_history", "Org3MSP")]
    assert fields[-2:] == [("status", "suspended"), ("status", "active")]
    assert led.call(A(ORGS[2]), "create_job", job_spec("job2"))["spec"]["participants"] == ORGS


def test_status_change_authorization_and_rejections(led):
    led.reject(T(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "suspended", "x", match="role 'trainer'")
    led.reject(ids.auditor(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "suspended", "x",
               match="auditors are read-only")
    led.reject(ids.admin("Org9MSP"), "propose_status_change", "s1", "Org3MSP", "suspended", "x",
               match="Org9MSP is not a member")
    led.reject(A(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "banned", "x",
               match="status must be one of active, suspended, got 'banned'")
    led.reject(A(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "active", "x", match="Org3MSP is already active",
               status=409)
    led.reject(A(ORGS[0]), "propose_status_change", "s1", "OrgXMSP", "suspended", "x", match="not a member", status=404)
    led.reject(A(ORGS[0]), "propose_status_change", "bad id!", "Org3MSP", "suspended", "x", match="proposal_id must")
    led.reject(A(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "suspended", "", match="reason must be")
    led.call(A(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "suspended", "x")
    led.reject(A(ORGS[0]), "propose_status_change", "s1", "Org2MSP", "suspended", "x", match="already exists")
    led.reject(A(ORGS[0]), "approve_status_change", "s1", match="Org1MSP already approved status proposal s1")
    led.reject(T(ORGS[1]), "approve_status_change", "s1", match="role 'trainer'")
    led.reject(A(ORGS[1]), "approve_status_change", "nope", match="status proposal nope not found", status=404)
    led.reject(A(ORGS[1]), "approve_stake_adjustment", "s1", match="stake proposal s1 not found")
    led.call(A(ORGS[1]), "approve_status_change", "s1")
    led.reject(A(ORGS[0]), "approve_status_change", "s1", match="status proposal s1 is already applied")
    # the suspended org's admin can no longer write at all
    led.reject(A(ORGS[2]), "propose_status_change", "r1", "Org3MSP", "active", "x",
               match="propose_status_change: Org3MSP is suspended, not active", status=403)
    led.reject(A(ORGS[2]), "create_job", job_spec("job2"), match="create_job: Org3MSP is suspended")


def test_suspending_the_last_stake_is_refused():
    led = Ledger()
    init(led, stakes=(100, 0, 0))
    led.reject(A(ORGS[1]), "propose_status_change", "s1", "Org1MSP", "suspended", "x",
               match="suspending Org1MSP would leave no active stake")


def test_a_suspended_org_cannot_take_part(led):
    _suspend(led)
    led.reject(T(ORGS[2]), "register", "job1", 1, KEY, match="register: Org3MSP is suspended, not active", status=403)
    led.reject(A(ORGS[0]), "create_job", job_spec("job2", participants=ORGS),
               match="spec.participants: Org3MSP is suspended, not active")
    spec = job_spec("job3")
    del spec["participants"]
    spec["hyperparams"]["shards"] = ORGS[:2]
    job = led.call(A(ORGS[0]), "create_job", spec)
    assert job["spec"]["participants"] == ORGS[:2]
    rec = led.call(T(ORGS[0]), "get_round", "job3", 1)
    assert sorted(rec["stakes"]) == ORGS[:2] and rec["leader"] in ORGS[:2]


def test_never_drawn_as_leader():
    led = Ledger()
    init(led, stakes=(1, 1, 1000))
    led.call(A(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "suspended", "x")  # pending: Org3 holds the stake
    led.call(A(ORGS[2]), "approve_status_change", "s1")
    for i in range(12):
        led.call(A(ORGS[0]), "create_job", job_spec(f"j{i}", participants=ORGS[:2]))
        assert led.call(T(ORGS[0]), "get_round", f"j{i}", 1)["leader"] in ORGS[:2]


def test_suspended_mid_round_cannot_submit_or_vote_and_leaves_the_tally(led):
    c = Consortium(led, samples={m: 100 for m in ORGS})
    c.register(1, ORGS)
    c.start(1)
    deltas = deltas_for(ORGS)
    c.submit(1, {m: deltas[m] for m in ORGS[:2]})
    p3 = c.payload(1, "Org3MSP", deltas["Org3MSP"])
    _suspend(led, pid="s1")
    led.reject(T(ORGS[2]), "submit_update", "job1", 1, meta_for(p3), transient={"update": p3},
               match="submit_update: Org3MSP is suspended")
    led.call(A(ORGS[1]), "propose_status_change", "r1", "Org3MSP", "active", "back")
    led.call(A(ORGS[0]), "approve_status_change", "r1")
    c.submit_payloads(1, {"Org3MSP": p3})
    res = c.result(1)
    c.vote(1, [ORGS[0], ORGS[2]], res)         # 200 of 300: would finalize
    _suspend(led, pid="s2")
    led.reject(T(ORGS[2]), "vote", "job1", 1, c.ballot(1, ORGS[2], res), match="vote: Org3MSP is suspended")
    c.vote(1, [ORGS[1]], res)
    out = c.finalize(1)
    tl = out["outcome"]["tally"]
    assert tl["excluded"] == ["Org3MSP"] and tl["total_stake"] == 200 and out["state"] == "finalized"
    assert list(tl["approve_by_result"].values()) == [200]
    assert "Org3MSP" not in c.round(2)["stakes"]          # the next round's electorate leaves it out


def test_stake_of_a_suspended_org_holds_no_weight_in_proposals(led):
    _suspend(led)
    # 100 of the 200 active stake is not 2/3: pending; the suspended org's 100 does not count
    p = led.call(A(ORGS[0]), "propose_stake_adjustment", "p1", "Org2MSP", 10, "more data")
    assert p["status"] == "pending"
    assert led.call(A(ORGS[1]), "approve_stake_adjustment", "p1")["status"] == "applied"
