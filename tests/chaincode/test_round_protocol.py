"""Round protocol v2 on the memory stub: three ordered phases per round, keys riding on ballots, the
next round opened by finalize, every transition and its refusals."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from fedfabric.fl import fixedpoint
from fedfabric_protocol import codec

from . import identities as ids
from .harness import ORGS, T0, Ledger, init, job_spec
from .rounds_helper import SAMPLES, Consortium, deltas_for

T = ids.trainer


def _job(**over) -> tuple[Ledger, Consortium]:
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(**over))
    return led, Consortium(led)


def _started(**over) -> tuple[Ledger, Consortium]:
    led, c = _job(**over)
    c.register(1, ORGS)
    c.start(1)
    return led, c


def test_create_job_opens_round_one_registering_and_start_needs_everyone_or_the_window():
    led, c = _job()
    rec = c.round(1)
    assert rec["state"] == "registration" and rec["participants"] == [] and rec["deadlines"]["register_by"] == T0 + 60
    assert sorted(rec["stakes"]) == ORGS and rec["leader"] in ORGS
    assert led.last_event.name == "JobCreated" and led.last_event.json()["next"]["round"] == 1
    c.register(1, ORGS[:2])
    led.reject(T(ORGS[0]), "start_round", "job1", 1, match="open until", status=409)
    led.t = T0 + 61
    rec = c.start(1)
    assert rec["state"] == "collecting" and rec["participants"] == ORGS[:2]
    assert sorted(rec["public_keys"]) == ORGS[:2]
    assert rec["deadlines"] == {"register_by": T0 + 60, "submit_by": T0 + 361, "reveal_by": T0 + 661,
                                "vote_by": T0 + 781}
    assert led.last_event.name == "RoundStarted" and led.last_event.json()["record"]["participants"] == ORGS[:2]


def test_normal_round_is_three_phases_and_opens_the_next_round_collecting():
    led, c = _started()
    deltas = deltas_for(ORGS)
    before = len(led.stub.rw_log)
    c.submit(1, deltas)
    res = c.result(1)
    c.vote(1, ORGS, res)
    out = c.finalize(1, who=c.round(1)["leader"])
    assert out["state"] == "finalized" and out["outcome"]["version"] == 1
    assert out["outcome"]["contributors"] == ORGS and out["outcome"]["aggregate"]["recomputed"] is True
    writes = [x for x in led.stub.rw_log[before:] if x.writes]
    assert len(writes) == 3 + 3 + 1  # submit x3, vote x3, finalize: three ordered phases
    # the aggregate is plain FedAvg of the quantized weighted updates, bit for bit
    clear = codec.sum_mod([fixedpoint.encode_weighted(deltas[m], SAMPLES[m], headroom=3) for m in ORGS])
    from fedfabric_protocol.rules import rule_from_dict
    want = rule_from_dict({"rule": "fedavg"}).from_weighted_sum(codec.to_signed(clear), sum(SAMPLES.values()))
    assert np.array_equal(codec.to_signed(res["words"]), want)
    v = led.call(T(ORGS[0]), "get_version", "job1", "1")
    assert v["aggregate_hash"] == res["aggregate_hash"] and v["model_hash"] == res["model_hash"]
    assert [x["msp_id"] for x in v["contributors"]] == ORGS and sorted(v["tx_ids"]["votes"]) == ORGS
    assert not any("\x00agg" in k for k in led.stub.private.get("fedfabricUpdates", {}))   # no model bytes kept
    nxt = c.round(2)
    assert nxt["state"] == "collecting" and nxt["participants"] == ORGS and nxt["base_version"] == 1
    assert nxt["base_hash"] == res["model_hash"] and nxt["started_at"] == nxt["opened_at"]
    ev = led.last_event
    assert ev.name == "RoundFinalized" and ev.json()["next"]["participants"] == ORGS
    job = c.job()
    assert job["current_round"] == 2 and job["latest_version"] == 1 and job["rounds_finalized"] == 1
    # payloads purged from the private collection, their hashes stay in the public records
    assert all(led.stub.private["fedfabricUpdates"].get(k) is None for _, k in led.stub.purged)


def test_writes_of_one_phase_never_touch_what_the_others_read():
    led, c = _started()
    phases = []
    for step in ("submit", "vote"):
        mark = len(led.stub.rw_log)
        if step == "submit":
            c.submit(1, deltas_for(ORGS))
        else:
            c.vote(1, ORGS, c.result(1))
        phases.append([x for x in led.stub.rw_log[mark:] if x.writes])
    for txs in phases:
        assert len(txs) == 3
        for a, b in itertools.permutations(txs, 2):
            assert not b.conflicts_with(a), (a, b)
            assert not b.ranges, "a round phase must read by point, not by range"


def test_job_completes_after_its_last_round_and_takes_no_next_key():
    led, c = _started(rounds=2)
    c.full_round(1, deltas_for(ORGS, 1))
    c.submit(2, deltas_for(ORGS, 2))
    res = c.result(2)
    bad = c.ballot(2, ORGS[0], res)
    bad["next_public_key"] = "ab" * 32
    led.reject(T(ORGS[0]), "vote", "job1", 2, bad, match="last of job job1")
    c.vote(2, ORGS, res)
    out = c.finalize(2)
    assert out["state"] == "finalized"
    assert led.last_event.name == "JobCompleted" and led.last_event.json()["next"] is None
    job = c.job()
    assert job["status"] == "completed" and job["latest_version"] == 2 and job["current_round"] == 2
    led.reject(T(ORGS[0]), "submit_update", "job1", 2, {}, match="is finalized", status=409)


def test_secure_dropout_survivors_reveal_and_the_aggregate_is_fedavg_of_survivors():
    led, c = _started()
    deltas = deltas_for(ORGS[:2], 3)
    c.submit(1, deltas)                       # Org3 never submits
    led.reject(T(ORGS[0]), "vote", "job1", 1, c.ballot(1, ORGS[0], c.result(1)), match="collecting until")
    led.reject(T(ORGS[0]), "finalize_round", "job1", 1, match="collecting until", status=409)
    led.t = T0 + 301
    led.reject(T(ORGS[0]), "vote", "job1", 1, c.ballot(1, ORGS[0], c.result(1)),
               match="waiting for seed reveals from Org1MSP, Org2MSP", status=409)
    led.reject(T(ORGS[2]), "reveal_seeds", "job1", 1, ["Org3MSP"], transient={"seeds": b"{}"},
               match="only survivors reveal", status=403)
    c.reveal(1, ORGS[:2], ["Org3MSP"])
    led.reject(T(ORGS[2]), "submit_update", "job1", 1, {}, match="too late")
    res = c.result(1)
    assert res["contributors"] == ORGS[:2]
    c.vote(1, ORGS[:2], res)
    out = c.finalize(1)                      # every submitter voted: no need to wait for Org3
    assert out["state"] == "finalized" and out["outcome"]["left_out"] == ["Org3MSP"]
    clear = codec.sum_mod([fixedpoint.encode_weighted(deltas[m], SAMPLES[m], headroom=3) for m in ORGS[:2]])
    from fedfabric_protocol.rules import rule_from_dict
    want = rule_from_dict({"rule": "fedavg"}).from_weighted_sum(codec.to_signed(clear), 400)
    assert np.array_equal(codec.to_signed(res["words"]), want)
    assert out["outcome"]["settlement"]["slashed"] == {"Org3MSP": 10}
    nxt = c.round(2)
    assert nxt["state"] == "collecting" and nxt["participants"] == ORGS[:2]   # Org3 gave no key
    # Org3 comes back: it registers for round 3 while round 2 collects
    c.register(3, [ORGS[2]])
    c.submit(2, deltas_for(ORGS[:2], 4))
    res = c.result(2)
    c.vote(2, ORGS[:2], res)
    c.vote(2, [ORGS[2]], res, next_key=False)   # not a participant of round 2, still a voter
    assert c.finalize(2)["outcome"]["voted"] == ORGS
    assert c.round(3)["participants"] == ORGS


def test_no_quorum_fails_the_round_and_the_next_opens_from_the_same_base():
    led, c = _started()
    c.submit(1, deltas_for(ORGS))
    res = c.result(1)
    c.vote(1, [ORGS[0]], res)
    c.vote(1, ORGS[1:], res, approve=False)
    out = c.finalize(1)
    assert out["state"] == "failed" and out["outcome"]["reason"] == "approval quorum not reached"
    assert c.round(2)["base_version"] == 0 and c.job()["rounds_failed"] == 1
    assert led.last_event.name == "RoundFailed"


def test_a_quorum_on_a_wrong_aggregate_is_caught_by_the_endorsed_recomputation():
    led, c = _started()
    c.submit(1, deltas_for(ORGS))
    res = dict(c.result(1))
    res["aggregate_hash"] = "0" * 64
    c.vote(1, ORGS, res)
    out = c.finalize(1)
    assert out["state"] == "failed" and "differs from the endorsed recomputation" in out["outcome"]["reason"]


def test_finalize_waits_for_every_submitter_or_the_vote_deadline():
    led, c = _started()
    c.submit(1, deltas_for(ORGS))
    res = c.result(1)
    c.vote(1, ORGS[:2], res)
    led.reject(T(ORGS[0]), "finalize_round", "job1", 1, match="waiting for Org3MSP", status=409)
    led.t = T0 + 782
    out = c.finalize(1)
    assert out["state"] == "finalized" and out["outcome"]["voted"] == ORGS[:2]
    assert c.round(2)["participants"] == ORGS[:2]   # Org3 sent no key for round 2


def test_a_round_is_not_failed_early_while_pending_votes_could_still_carry_it():
    led, c = _started(quorum="3/3")
    c.submit(1, deltas_for(ORGS[:2], 5))          # Org3 is down: dropped
    led.t = T0 + 301
    c.reveal(1, ORGS[:2], ["Org3MSP"])
    res = c.result(1)
    c.vote(1, ORGS[:2], res)                      # every submitter voted, but 200 of 300 is not 3/3 yet
    led.reject(T(ORGS[0]), "finalize_round", "job1", 1, match="vote undecided", status=409)
    c.vote(1, [ORGS[2]], res)                     # Org3 is back and agrees
    assert c.finalize(1)["state"] == "finalized"
