"""Clear-mode anomaly scoring and the aggregate records: distance to the unweighted coordinate median."""
import numpy as np
from hypothesis import given, strategies as st

from fedfabric_protocol import aggregate, codec
from fedfabric_protocol.rules import _integer as ints, rule_from_dict


def rows(*vals):
    return ints.stack([np.full(8, v, np.int64) for v in vals])


def test_against_the_weighted_mean_an_honest_small_org_would_look_anomalous():
    """Why the reference is the unweighted median: measured against the sample-weighted mean the honest
    small org's distance exceeds factor^2 x the median distance."""
    vals = rows(100, 110, 130)
    ref = rule_from_dict({"rule": "fedavg"}).aggregate(vals, [800, 800, 100]).aggregate
    d = [ints.squared_distance(v, ref) for v in vals]
    assert d[2] > 9 * sorted(d)[1]
    dists, flagged = aggregate.anomaly_scores(vals, 3)
    assert dists == [8 * 10 ** 2, 0, 8 * 20 ** 2] and flagged == []


def test_quantisation_noise_is_never_anomalous():
    dists, flagged = aggregate.anomaly_scores(rows(0, 0, 1), 3)
    assert dists == [0, 0, 8] and flagged == []
    _, flagged = aggregate.anomaly_scores(rows(0, 0, 4), 3)
    assert flagged == [2]  # 4 units per coordinate: 128 > 9 x the floor of 8


@given(st.lists(st.lists(st.integers(-1000, 1000), min_size=4, max_size=4), min_size=1, max_size=7), st.randoms(),
       st.integers(1, 5))
def test_anomaly_scores_are_integer_and_order_independent(data, rnd, factor):
    vals = ints.stack([np.array(r, np.int64) for r in data])
    dists, flagged = aggregate.anomaly_scores(vals, factor)
    assert all(isinstance(d, int) for d in dists)
    order = list(range(len(vals)))
    rnd.shuffle(order)
    d2, f2 = aggregate.anomaly_scores(vals[order], factor)
    assert [d2[order.index(i)] for i in range(len(vals))] == dists
    assert sorted(order[i] for i in f2) == flagged


def _words(v):
    return codec.from_signed(np.full(8, v, np.int64))


def test_clear_aggregate_flags_what_multi_krum_leaves_out_and_the_outlier_otherwise():
    ups = {f"O{i}": _words(v) for i, v in enumerate((0, 1, 2, 1, 1000))}
    samples = {m: 10 for m in ups}
    krum = aggregate.clear_aggregate(rule_from_dict({"rule": "multi_krum", "krum_f": 1}), ups, samples, 3)
    assert krum.flagged == ("O4",) and krum.contributors == tuple(sorted(ups))
    avg = aggregate.clear_aggregate(rule_from_dict({"rule": "fedavg"}), ups, samples, 3)
    assert avg.flagged == ("O4",)
    assert codec.sha256_hex(codec.pack(avg.words)) == avg.hash
    loo = aggregate.leave_one_out(rule_from_dict({"rule": "fedavg"}), ups, samples, avg)
    assert max(loo, key=loo.get) == "O4"


def test_leave_one_out_falls_back_to_fedavg_when_the_rule_cannot_run_on_fewer():
    ups = {f"O{i}": _words(v) for i, v in enumerate((0, 10, 20))}
    rule = rule_from_dict({"rule": "trimmed_mean", "trim": 1})
    agg = aggregate.clear_aggregate(rule, ups, {m: 1 for m in ups}, 3)
    assert codec.to_signed(agg.words).tolist() == [10] * 8
    loo = aggregate.leave_one_out(rule, ups, {m: 1 for m in ups}, agg)
    assert loo == {"O0": 8 * 25, "O1": 0, "O2": 8 * 25}
