"""The rule registry and every rule's kernel: order independence, ties, feasibility, robustness."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.rules import RULES, _integer as ints, rule_from_dict, rule_names
from fedfabric_protocol.states import Privacy

PARAMS = {"fedavg": {}, "median": {}, "trimmed_mean": {"trim": 1}, "multi_krum": {"krum_f": 1},
          "krum": {"krum_f": 1}, "bulyan": {"bulyan_f": 1}}


def test_every_registered_rule_is_exercised_here():
    assert sorted(PARAMS) == rule_names() == sorted(RULES.classes)


def test_unknown_rules_and_parameters_are_refused_by_name():
    with pytest.raises(ProtocolError, match="unknown rule 'mean' .known: bulyan, fedavg, krum, median"):
        rule_from_dict({"rule": "mean"})
    with pytest.raises(ProtocolError, match="spec.aggregation: unknown field.s. 'f'"):
        rule_from_dict({"rule": "krum", "f": 1})
    with pytest.raises(ProtocolError, match="spec.aggregation.krum_f is required"):
        rule_from_dict({"rule": "krum"})
    with pytest.raises(ProtocolError, match="must be a JSON object"):
        rule_from_dict("fedavg")


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_feasibility_is_checked_before_any_round_and_again_by_the_kernel(name):
    rule = rule_from_dict({"rule": name, **PARAMS[name]})
    need = rule.min_updates()
    rule.check_feasible(need, Privacy.CLEAR)
    if need > 1:
        with pytest.raises(ProtocolError, match=f"needs at least {need} updates, min_participants is {need - 1}"):
            rule.check_feasible(need - 1, Privacy.CLEAR)
        with pytest.raises(ProtocolError, match=f"needs at least {need} updates, got {need - 1}"):
            rule.aggregate(ints.stack([np.zeros(3, np.int64)] * (need - 1)), [1] * (need - 1))
    if not rule.linear:
        with pytest.raises(ProtocolError, match="secure mode supports only rules that work on the masked sum"):
            rule.check_feasible(need, Privacy.SECURE)
    assert rule_from_dict(rule.to_dict()) == rule


def rows_of(n, seed, outliers=0):
    rng = np.random.default_rng(seed)
    honest = [rng.integers(-100, 100, 6) for _ in range(n - outliers)]
    bad = [np.full(6, 10**6) + i for i in range(outliers)]
    return honest + bad


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(PARAMS)), st.integers(0, 2**31), st.data())
def test_every_kernel_ignores_the_order_of_the_updates(name, seed, data):
    rule = rule_from_dict({"rule": name, **PARAMS[name]})
    n = max(rule.min_updates(), 3) + data.draw(st.integers(0, 3))
    rows = rows_of(n, seed)
    w = [int(x) for x in np.random.default_rng(seed).integers(1, 500, n)]
    out = rule.aggregate(ints.stack(rows), w)
    perm = data.draw(st.permutations(range(n)))
    out2 = rule.aggregate(ints.stack([rows[i] for i in perm]), [w[i] for i in perm])
    assert out.aggregate.tolist() == out2.aggregate.tolist()
    assert sorted(tuple(rows[i]) for i in out.used) == sorted(tuple(rows[perm[i]]) for i in out2.used)


def test_ties_are_broken_by_the_updates_bytes_not_their_position():
    same = [np.array([1, 2, 3]), np.array([1, 2, 3]), np.array([5, 5, 5]), np.array([1, 2, 3]), np.array([0, 0, 0])]
    for name in ("krum", "multi_krum", "bulyan"):
        rule = rule_from_dict({"rule": name, **({"bulyan_f": 0} if name == "bulyan" else {"krum_f": 1})})
        a = rule.aggregate(ints.stack(same), [1] * 5).aggregate
        b = rule.aggregate(ints.stack(same[::-1]), [1] * 5).aggregate
        assert a.tolist() == b.tolist(), name


@pytest.mark.parametrize("name,params", [("krum", {"krum_f": 2}), ("multi_krum", {"krum_f": 2}),
                                          ("bulyan", {"bulyan_f": 1}), ("median", {}), ("trimmed_mean", {"trim": 2})])
def test_robust_rules_drop_poisoned_updates(name, params):
    rows = rows_of(7, 3, outliers=2 if name != "bulyan" else 1)
    out = rule_from_dict({"rule": name, **params}).aggregate(ints.stack(rows), [10] * 7)
    assert np.abs(out.aggregate).max() <= 100, (name, out)
    if name in ("krum", "multi_krum", "bulyan"):
        assert not set(out.used) & {5, 6} if name != "bulyan" else 6 not in out.used
    fedavg = rule_from_dict({"rule": "fedavg"}).aggregate(ints.stack(rows), [10] * 7)
    assert np.abs(fedavg.aggregate).max() > 10**5      # the plain mean is dragged away


def test_krum_picks_one_update_and_bulyan_averages_near_the_median():
    rows = [np.array([0, 0]), np.array([1, 1]), np.array([2, 0]), np.array([1, 2]), np.array([1, 1]),
            np.array([0, 1]), np.array([1000, -1000])]
    k = rule_from_dict({"rule": "krum", "krum_f": 1}).aggregate(ints.stack(rows), [1] * 7)
    assert len(k.used) == 1 and k.aggregate.tolist() == rows[k.used[0]].tolist()
    b = rule_from_dict({"rule": "bulyan", "bulyan_f": 1}).aggregate(ints.stack(rows), [1] * 7)
    assert 6 not in b.used and len(b.used) == 5 and b.aggregate.tolist() == [1, 1]
