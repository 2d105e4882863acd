"""Clear-mode rounds on the memory stub: the rule and the anomaly score recomputed under endorsement,
flagged updates slashed, rewards by leave-one-out."""
import numpy as np
import pytest

from . import identities as ids
from .harness import ORGS, Ledger, init, job_spec, words
from .rounds_helper import Consortium

SAMPLES = {"Org1MSP": 800, "Org2MSP": 800, "Org3MSP": 100}   # one small org


def _round(rule: dict, vals: dict[str, int], samples=SAMPLES) -> tuple[Ledger, Consortium, dict]:
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(privacy="clear", aggregation=rule, min_participants=3,
                                                        max_abs=1 << 20))
    c = Consortium(led, samples=samples)
    c.register(1, ORGS)
    c.start(1)
    c.submit_payloads(1, {m: words([v] * 8) for m, v in vals.items()})
    res = c.result(1)
    c.vote(1, ORGS, res)
    return led, c, c.finalize(1)


@pytest.mark.parametrize("rule", [{"rule": "fedavg"}, {"rule": "trimmed_mean", "trim": 1}, {"rule": "median"}])
def test_honest_small_org_is_not_flagged_or_slashed(rule):
    led, c, out = _round(rule, {"Org1MSP": 100, "Org2MSP": 110, "Org3MSP": 130})
    o = out["outcome"]
    assert out["state"] == "finalized" and o["flagged"] == [] and o["settlement"]["slashed"] == {}
    assert o["aggregate"]["distances"] == {"Org1MSP": str(8 * 10 ** 2), "Org2MSP": "0", "Org3MSP": str(8 * 20 ** 2)}
    assert sum(o["settlement"]["rewards"].values()) == 1000


@pytest.mark.parametrize("rule", [{"rule": "fedavg"}, {"rule": "trimmed_mean", "trim": 1}, {"rule": "median"}])
def test_real_outlier_is_flagged_slashed_and_unpaid(rule):
    led, c, out = _round(rule, {"Org1MSP": 100, "Org2MSP": 110, "Org3MSP": 5000})
    o = out["outcome"]
    assert o["flagged"] == ["Org3MSP"] and o["settlement"]["slashed"] == {"Org3MSP": 20}
    assert "Org3MSP" not in o["settlement"]["rewards"]
    assert led.call(ids.trainer(ORGS[0]), "get_org", "Org3MSP")["stake"] == 80


def test_a_big_org_is_flagged_like_a_small_one():
    _, _, out = _round({"rule": "fedavg"}, {"Org1MSP": 100, "Org2MSP": 110, "Org3MSP": 5000},
                       {"Org1MSP": 100, "Org2MSP": 100, "Org3MSP": 5000})
    assert out["outcome"]["flagged"] == ["Org3MSP"]


def test_ballots_that_hide_the_flag_do_not_finalize():
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(privacy="clear", min_participants=3, max_abs=1 << 20))
    c = Consortium(led, samples=SAMPLES)
    c.register(1, ORGS)
    c.start(1)
    c.submit_payloads(1, {"Org1MSP": words([100] * 8), "Org2MSP": words([110] * 8), "Org3MSP": words([5000] * 8)})
    res = c.result(1)
    res["flagged"] = []
    c.vote(1, ORGS, res)
    out = c.finalize(1)
    assert out["state"] == "failed" and "differs from the endorsed recomputation" in out["outcome"]["reason"]


def test_clear_mode_refuses_out_of_range_and_non_finite_words():
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(privacy="clear", min_participants=2, max_abs=1000))
    c = Consortium(led, samples=SAMPLES)
    c.register(1, ORGS)
    c.start(1)
    with pytest.raises(Exception, match="value out of range at index 0"):
        c.submit_payloads(1, {"Org1MSP": words([1001] + [0] * 7)})
    with pytest.raises(Exception, match="non-finite value at index 3"):
        c.submit_payloads(1, {"Org1MSP": words([0, 0, 0, -(1 << 31)] + [0] * 4)})
