"""DP epsilon: every round that released an aggregate spends privacy, finalized or not."""
import numpy as np

from . import identities as ids
from .harness import ORGS, T0, Ledger, h, init, job_spec, meta_for
from .rounds_helper import open_and_register, secure_payloads, vote_all

T = ids.trainer
SAMPLES = {m: 100 for m in ORGS}
DP = {"enabled": True, "clip_norm_milli": 1000, "noise_multiplier_milli": 1100, "epsilon_budget_milli": 2000}


def _round(led: Ledger, eps: dict[str, int], at: int) -> int:
    """Open a round at ``at``; the orgs in ``eps`` submit with that epsilon; returns the round number."""
    led.t = at
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    payloads = secure_payloads(keys, {m: np.full(8, 0.01) for m in eps}, SAMPLES, "job1", r, ORGS)
    for m, p in payloads.items():
        led.call(T(m), "submit_update", "job1", r, meta_for(p, SAMPLES[m], dp_epsilon_milli=eps[m]),
                 transient={"update": p})
    return r


def _job(led: Ledger) -> dict:
    return led.call(T(ORGS[0]), "get_job", "job1")


def test_epsilon_is_accounted_over_every_released_aggregate():
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(rounds=4, dp=DP))
    assert _job(led)["dp_epsilon_spent_milli"] == 0

    # round 1: released (max epsilon of its updates: 800), then the vote fails -> still spent
    r = _round(led, {"Org1MSP": 700, "Org2MSP": 800, "Org3MSP": 750}, T0)
    rec = led.call(T(led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]), "aggregate", "job1", r)
    assert rec["aggregate"]["dp_epsilon_milli"] == 800 and rec["aggregate"]["dp_epsilon_total_milli"] == 800
    assert led.last_event.json()["dp_epsilon_total_milli"] == 800
    vote_all(led, "job1", r, h("v1"), approve=(), reject=ORGS)
    assert led.call(T(ORGS[0]), "finalize_round", "job1", r)["state"] == "failed"
    assert _job(led)["dp_epsilon_spent_milli"] == 800

    # round 2: finalized; its version counts round 1's spend too
    r = _round(led, {m: 900 for m in ORGS}, T0 + 1000)
    led.call(T(led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]), "aggregate", "job1", r)
    vote_all(led, "job1", r, h("v1"))
    v1 = led.call(T(ORGS[0]), "finalize_round", "job1", r)
    assert v1["version"] == 1 and v1["dp_epsilon_milli"] == 900 and v1["dp_epsilon_total_milli"] == 1700
    assert not v1["dp_budget_exceeded"]

    # round 3: fails before anything is released -> nothing spent
    r = _round(led, {"Org1MSP": 5000}, T0 + 2000)
    assert led.call(T(ORGS[1]), "aggregate", "job1", r, at=T0 + 2301)["state"] == "failed"
    assert _job(led)["dp_epsilon_spent_milli"] == 1700

    # round 4: over the budget, flagged on the aggregate and the version
    r = _round(led, {m: 600 for m in ORGS}, T0 + 3000)
    rec = led.call(T(led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]), "aggregate", "job1", r)
    assert rec["aggregate"]["dp_epsilon_total_milli"] == 2300 and rec["aggregate"]["dp_budget_exceeded"]
    vote_all(led, "job1", r, h("v2"))
    v2 = led.call(T(ORGS[0]), "finalize_round", "job1", r)
    assert v2["dp_epsilon_total_milli"] == 2300 and v2["dp_budget_exceeded"]
    assert led.last_event.name == "JobCompleted" and led.last_event.json()["dp_epsilon_spent_milli"] == 2300
    assert _job(led)["dp_epsilon_spent_milli"] == 2300
    cmp_ = led.call(ids.auditor(ORGS[0]), "compare_versions", "job1", "1", "2")
    assert cmp_["dp_epsilon_total_milli"] == [1700, 2300]
