"""Liveness: no round stays stuck; every timeout is transaction time, every failure says why and settles."""
import json

import numpy as np
import pytest

from . import identities as ids
from .harness import ORGS, T0, Ledger, h, init, job_spec, meta_for, words
from .rounds_helper import open_and_register, reveal, secure_payloads, submit, vote_all

T = ids.trainer
SAMPLES = {"Org1MSP": 100, "Org2MSP": 300, "Org3MSP": 50}
SUBMIT_BY = T0 + 300          # registration closes at T0 (everyone registered); submission window 300 s
REVEAL_BY = SUBMIT_BY + 300   # default reveal window: max(submission_s, 60)


def _led(**over) -> Ledger:
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(**over))
    return led


def _dropout_round(led: Ledger) -> tuple[int, dict]:
    """Everyone registers, Org3 drops out: Org1 and Org2 submit masked updates."""
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    deltas = {m: np.full(8, 0.01) for m in ORGS[:2]}
    submit(led, "job1", r, secure_payloads(keys, deltas, SAMPLES, "job1", r, ORGS), SAMPLES)
    return r, keys


def _round(led: Ledger, r: int = 1) -> dict:
    return led.call(T(ORGS[0]), "get_round", "job1", r)


def test_reveal_window_is_recorded_and_bounds_reveals():
    led = _led()
    r, keys = _dropout_round(led)
    rec = _round(led, r)
    assert rec["deadlines"]["submission"] == SUBMIT_BY and rec["deadlines"]["reveal"] == REVEAL_BY
    led.reject(T(ORGS[0]), "aggregate", "job1", r, match=f"waiting for seed reveals from Org1MSP, Org2MSP "
                                                         f"(dropped: Org3MSP) until {REVEAL_BY}", at=SUBMIT_BY + 1)
    seeds = {"seeds": json.dumps({"Org3MSP": "ab" * 32}).encode()}
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", r, transient=seeds, match="too late: the seed-reveal window",
               at=REVEAL_BY + 1)
    reveal(led, "job1", r, keys, ORGS[:2], ["Org3MSP"], at=REVEAL_BY)   # the last second still counts
    assert led.call(T(ORGS[2]), "aggregate", "job1", r, at=REVEAL_BY + 50)["state"] == "aggregated"


@pytest.mark.parametrize("fn", ["aggregate", "expire_round"])
def test_a_survivor_that_never_reveals_fails_the_round_and_is_slashed(fn):
    led = _led()
    r, keys = _dropout_round(led)
    reveal(led, "job1", r, keys, ["Org1MSP"], ["Org3MSP"], at=SUBMIT_BY + 1)
    led.reject(T(ORGS[0]), fn, "job1", r, match="waiting for seed reveals from Org2MSP" if fn == "aggregate"
               else f"is collecting until {REVEAL_BY}", at=REVEAL_BY)
    rec = led.call(T(ORGS[0]), fn, "job1", r, at=REVEAL_BY + 1)
    assert rec["state"] == "failed" and rec["failed_from"] == "collecting"
    assert rec["reason"] == f"Org2MSP did not reveal their seeds for Org3MSP by {REVEAL_BY}"
    assert rec["settlement"]["slashed"] == {"Org2MSP": 10, "Org3MSP": 10}   # slash_no_reveal defaults to slash_absent
    ev = led.last_event
    assert ev.name == "RoundFailed" and ev.json()["reason"] == rec["reason"] and ev.json()["from"] == "collecting"
    assert ev.json()["slashed"] == {"Org2MSP": 10, "Org3MSP": 10} and ev.json()["policy"] is not None
    orgs = {o["msp_id"]: o for o in led.call(ids.auditor(ORGS[0]), "list_orgs")}
    assert [orgs[m]["stake"] for m in ORGS] == [100, 90, 90]
    hist = led.call(ids.auditor(ORGS[0]), "org_history", "Org2MSP")[-1]
    assert hist["reason"] == "round-settlement" and hist["delta"] == -10 and hist["ref"] == {"job_id": "job1", "round": 1}
    # payloads and revealed seeds are purged; the job goes on
    assert ("fedfabricUpdates", led.stub.create_composite_key("seed", ["job1", "000001", "Org1MSP", "Org3MSP"])) \
        in led.stub.purged
    assert led.call(T(ORGS[0]), "get_job", "job1")["rounds_failed"] == 1
    assert led.call(T(ORGS[0]), "open_round", "job1", at=REVEAL_BY + 2)["round"] == 2


def test_slash_no_reveal_is_its_own_setting():
    led = _led(incentives={"slash_absent": 10, "slash_no_reveal": 33})
    r, keys = _dropout_round(led)
    rec = led.call(T(ORGS[0]), "expire_round", "job1", r, at=REVEAL_BY + 1)
    assert rec["settlement"]["slashed"] == {"Org1MSP": 33, "Org2MSP": 33, "Org3MSP": 10}


def test_custom_reveal_window():
    led = _led(windows={"registration_s": 60, "submission_s": 300, "reveal_s": 20, "approval_s": 120})
    r, _ = _dropout_round(led)
    assert _round(led, r)["deadlines"]["reveal"] == SUBMIT_BY + 20
    assert led.call(T(ORGS[1]), "expire_round", "job1", r, at=SUBMIT_BY + 21)["state"] == "failed"


def test_open_round_expires_when_registration_never_starts():
    led = _led()
    rec = led.call(T(ORGS[0]), "open_round", "job1")
    assert rec["deadlines"] == {"open": T0 + 60}
    led.reject(T(ORGS[1]), "expire_round", "job1", 1, match=f"round 1 of job job1 is open until {T0 + 60}",
               status=409, at=T0 + 60)
    led.reject(T(ORGS[1]), "start_registration", "job1", 1, match=f"had to start by {T0 + 60}", at=T0 + 61)
    out = led.call(T(ORGS[1]), "expire_round", "job1", 1, at=T0 + 61)
    assert out["state"] == "failed" and out["failed_from"] == "open"
    assert out["reason"] == f"registration was not started by the deadline {T0 + 60}"
    assert led.last_event.name == "RoundFailed" and led.last_event.json()["slashed"] == {}
    led.reject(T(ORGS[1]), "expire_round", "job1", 1, match="is failed, expected open or registration")


def test_registration_expires_only_with_too_few_registrations():
    led = _led()
    led.call(T(ORGS[0]), "open_round", "job1")
    led.call(T(ORGS[0]), "start_registration", "job1", 1)
    led.call(T(ORGS[0]), "register", "job1", 1, "11" * 32)
    led.call(T(ORGS[1]), "register", "job1", 1, "22" * 32)
    led.reject(T(ORGS[2]), "expire_round", "job1", 1, match="close_registration moves it to collecting",
               at=T0 + 61)
    led2 = _led()
    led2.call(T(ORGS[0]), "open_round", "job1")
    led2.call(T(ORGS[0]), "start_registration", "job1", 1)
    led2.call(T(ORGS[0]), "register", "job1", 1, "11" * 32)
    out = led2.call(T(ORGS[2]), "expire_round", "job1", 1, at=T0 + 61)
    assert out["state"] == "failed" and out["participants"] == ["Org1MSP"]
    assert out["reason"] == f"only 1 registered by the deadline {T0 + 60}, 2 required"


def test_collecting_round_that_nobody_can_aggregate_expires():
    """All updates in, but the private payloads are gone (purged): aggregate cannot run on any peer,
    so after the reveal deadline anyone fails the round from public state alone."""
    led = _led()
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {m: np.zeros(8) for m in ORGS}, SAMPLES, "job1", r, ORGS), SAMPLES)
    led.stub.private["fedfabricUpdates"].clear()
    led.reject(T(ORGS[0]), "aggregate", "job1", r, match="private payload of Org1MSP is not available", status=503,
               at=SUBMIT_BY + 1)
    out = led.call(T(ORGS[0]), "expire_round", "job1", r, at=REVEAL_BY + 1)
    assert out["reason"] == f"not aggregated by the deadline {REVEAL_BY}" and out["settlement"]["slashed"] == {}


def test_too_few_updates_expire_like_aggregate_fails():
    led = _led()
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {"Org1MSP": np.zeros(8)}, SAMPLES, "job1", r, ORGS), SAMPLES)
    out = led.call(T(ORGS[2]), "expire_round", "job1", r, at=REVEAL_BY + 1)
    assert out["reason"] == "only 1 updates submitted, 2 required"
    assert out["settlement"]["slashed"] == {"Org2MSP": 10, "Org3MSP": 10}


def _aggregated(led: Ledger) -> int:
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {m: np.full(8, 0.01) for m in ORGS}, SAMPLES, "job1", r, ORGS),
           SAMPLES)
    leader = _round(led, r)["leader"]
    assert led.call(T(leader), "aggregate", "job1", r)["state"] == "aggregated"
    return r


def test_aggregated_round_without_quorum_expires_after_the_approval_window():
    led = _led()
    r = _aggregated(led)
    approve_by = _round(led, r)["deadlines"]["approval"]
    assert approve_by == T0 + 120
    led.call(T(ORGS[0]), "vote", "job1", r, {"approve": True, "model_hash": h("v1")})
    led.reject(T(ORGS[1]), "expire_round", "job1", r, match=f"is aggregated until {approve_by}", at=approve_by)
    out = led.call(T(ORGS[1]), "expire_round", "job1", r, at=approve_by + 1)
    assert out["state"] == "failed" and out["failed_from"] == "aggregated"
    assert out["reason"] == f"approval quorum not reached by the approval deadline {approve_by}"
    assert out["tally"]["approve_by_hash"] == {h("v1"): 100}
    assert led.last_event.name == "RoundFailed"


def test_aggregated_round_with_quorum_is_finalized_not_expired():
    led = _led()
    r = _aggregated(led)
    vote_all(led, "job1", r, h("v1"), approve=ORGS[:2])
    led.reject(T(ORGS[1]), "expire_round", "job1", r, match="reached the approval quorum: finalize_round", at=T0 + 500)
    assert led.call(T(ORGS[1]), "finalize_round", "job1", r, at=T0 + 500)["version"] == 1


def test_expire_round_authorization_and_arguments():
    led = _led()
    led.call(T(ORGS[0]), "open_round", "job1")
    led.reject(ids.auditor(ORGS[0]), "expire_round", "job1", 1, match="expire_round: auditors are read-only",
               at=T0 + 100)
    led.reject(ids.trainer("Org9MSP"), "expire_round", "job1", 1, match="Org9MSP is not a member", at=T0 + 100)
    led.reject(T(ORGS[0]), "expire_round", "job1", 2, match="round 2 of job job1 not found", at=T0 + 100)
    led.reject(T(ORGS[0]), "expire_round", "nojob", 1, match="job nojob not found", at=T0 + 100)


def test_aggregation_that_cannot_apply_the_rule_fails_the_round():
    """Sample counts whose total exceeds what exact integer FedAvg can weigh: a clear failure."""
    led = _led(privacy="clear", min_participants=2, max_abs=1000)
    r, _ = open_and_register(led, "job1", who=ORGS[:2])
    led.call(T(ORGS[0]), "close_registration", "job1", r, at=T0 + 61)
    p = words([1] * 8)
    for m in ORGS[:2]:
        led.call(T(m), "submit_update", "job1", r, meta_for(p, samples=(1 << 30) + 1), transient={"update": p},
                 at=T0 + 62)
    out = led.call(T(ORGS[0]), "aggregate", "job1", r, at=T0 + 61 + 301)
    assert out["state"] == "failed" and out["reason"].startswith("aggregation failed: total sample count")
    assert "aggregate" not in out and led.last_event.name == "RoundFailed"
    led.reject(T(ORGS[0]), "get_aggregate", "job1", r, match="has no aggregate (state failed)", status=409)


def test_rule_that_became_inapplicable_fails_instead_of_sticking():
    """A spec that slipped past validation (tampered on the ledger): Multi-Krum with m > n - f."""
    led = _led(privacy="clear", aggregation={"rule": "multi_krum", "krum_f": 0}, min_participants=3, max_abs=1000)
    jk = led.stub.create_composite_key("job", ["job1"])
    job = json.loads(led.stub.state[jk])
    job["spec"]["aggregation"]["krum_m"] = 7
    led.stub.state[jk] = json.dumps(job, sort_keys=True, separators=(",", ":")).encode()
    r, _ = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    for i, m in enumerate(ORGS):
        p = words([i] * 8)
        led.call(T(m), "submit_update", "job1", r, meta_for(p), transient={"update": p})
    out = led.call(T(_round(led, r)["leader"]), "aggregate", "job1", r)
    assert out["state"] == "failed" and out["reason"] == "aggregation failed: Multi-Krum m=7 must be between 1 and n - f = 3"
    assert led.last_event.name == "RoundFailed" and led.last_event.json()["reason"] == out["reason"]
