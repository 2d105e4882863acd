"""Clear-mode anomaly scoring: distance to the unweighted coordinate-wise median, not to the aggregate."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from fedfabric_cc import aggregation as agg

from . import identities as ids
from .harness import ORGS, Ledger, h, init, job_spec, meta_for, words
from .rounds_helper import open_and_register, vote_all

T = ids.trainer
SAMPLES = {"Org1MSP": 800, "Org2MSP": 800, "Org3MSP": 100}   # one small org


def _round(rule: dict, vals: dict[str, int], samples: dict[str, int] = SAMPLES) -> tuple[Ledger, dict]:
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(privacy="clear", aggregation=rule, min_participants=3,
                                                        max_abs=1 << 20))
    r, _ = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    for m, v in vals.items():
        p = words([v] * 8)
        led.call(T(m), "submit_update", "job1", r, meta_for(p, samples[m]), transient={"update": p})
    leader = led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]
    return led, led.call(T(leader), "aggregate", "job1", r)


def test_the_reproducer_would_be_flagged_against_the_weighted_aggregate():
    """Sanity check of the case below: measured against the sample-weighted mean (the old rule), the
    honest small org's distance exceeds factor^2 x the median distance."""
    vals = [np.full(8, v, np.int64) for v in (100, 110, 130)]
    ref = agg.fedavg(vals, [800, 800, 100])
    d = [agg.squared_distance(v, ref) for v in vals]
    assert d[2] > 9 * sorted(d)[1]


@pytest.mark.parametrize("rule", [{"rule": "fedavg"}, {"rule": "trimmed_mean", "trim": 1}, {"rule": "median"}])
def test_honest_small_org_is_not_flagged_or_slashed(rule):
    led, rec = _round(rule, {"Org1MSP": 100, "Org2MSP": 110, "Org3MSP": 130})
    a = rec["aggregate"]
    assert a["anomalous"] == [] and a["distance_reference"] == "coordinate_median"
    assert a["distances"] == {"Org1MSP": str(8 * 10 ** 2), "Org2MSP": "0", "Org3MSP": str(8 * 20 ** 2)}
    vote_all(led, "job1", rec["round"], h("v1"))
    v = led.call(T(ORGS[0]), "finalize_round", "job1", rec["round"])
    assert v["slashed"] == {} and v["anomalous"] == []


@pytest.mark.parametrize("rule", [{"rule": "fedavg"}, {"rule": "trimmed_mean", "trim": 1}, {"rule": "median"}])
def test_real_outlier_is_flagged_and_slashed(rule):
    led, rec = _round(rule, {"Org1MSP": 100, "Org2MSP": 110, "Org3MSP": 5000})
    assert rec["aggregate"]["anomalous"] == ["Org3MSP"]
    vote_all(led, "job1", rec["round"], h("v1"))
    v = led.call(T(ORGS[0]), "finalize_round", "job1", rec["round"])
    assert v["slashed"] == {"Org3MSP": 20} and "Org3MSP" not in v["rewards"]


def test_a_big_org_is_flagged_like_a_small_one():
    """Sample counts do not shield an outlier: the reference ignores them."""
    _, rec = _round({"rule": "fedavg"}, {"Org1MSP": 100, "Org2MSP": 110, "Org3MSP": 5000},
                    {"Org1MSP": 100, "Org2MSP": 100, "Org3MSP": 5000})
    assert rec["aggregate"]["anomalous"] == ["Org3MSP"]


def test_quantisation_noise_is_never_anomalous():
    vals = [np.zeros(8, np.int64), np.zeros(8, np.int64), np.ones(8, np.int64)]
    dists, flagged = agg.anomaly_scores(vals, 3)
    assert dists == [0, 0, 8] and flagged == []
    dists, flagged = agg.anomaly_scores(vals[:2] + [np.full(8, 4, np.int64)], 3)
    assert flagged == [2]  # 4 units per coordinate: 128 > 9 x the floor of 8


@given(st.lists(st.lists(st.integers(-1000, 1000), min_size=4, max_size=4), min_size=1, max_size=7), st.randoms(),
       st.integers(1, 5))
def test_anomaly_scores_are_integer_and_order_independent(rows, rnd, factor):
    vals = [np.array(r, np.int64) for r in rows]
    dists, flagged = agg.anomaly_scores(vals, factor)
    assert all(isinstance(d, int) for d in dists)
    order = list(range(len(vals)))
    rnd.shuffle(order)
    d2, f2 = agg.anomaly_scores([vals[i] for i in order], factor)
    assert [d2[order.index(i)] for i in range(len(vals))] == dists
    assert sorted(order[i] for i in f2) == flagged
