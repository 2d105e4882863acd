"""Reading the policy record: which endorser sets the stake rule accepts, and the fewest a client asks."""
from itertools import combinations

import pytest

from fedfabric_protocol import stakerule


def rec(stakes: dict, num=2, den=3) -> dict:
    return {"threshold": [num, den],
            "classes": [{"stake": s, "orgs": list(o)} for s, o in stakerule.stake_classes(stakes)]}


def test_stake_classes_are_canonical():
    assert stakerule.stake_classes({"B": 5, "A": 5, "C": 9, "D": 0}) == [(9, ("C",)), (5, ("A", "B"))]


def test_accepts_reads_the_stake_classes():
    r = rec({"A": 50, "B": 30, "C": 20})
    assert stakerule.accepts(r, ["A", "B"]) and stakerule.accepts(r, ["C", "A"]) and not stakerule.accepts(r, ["B", "C"])
    assert stakerule.accepts(r, ["A", "B", "Z"]) and not stakerule.accepts(r, ["B", "Z"])   # Z holds no stake
    assert stakerule.rule_orgs(r) == ["A", "B", "C"]


def test_lifecycle_rule():
    r = {**rec({"A": 1, "B": 1}), "vectors": [[2]], "policy": "x"}
    assert stakerule.lifecycle_rule(r) == {"threshold": [2, 3], "classes": r["classes"]}
    life = {"threshold": [1, 2], "classes": [{"stake": 1, "orgs": ["A"]}]}
    assert stakerule.lifecycle_rule({**r, "lifecycle": life}) == life


@pytest.mark.parametrize("me,want", [("Org1MSP", ["Org1MSP", "Org2MSP"]), ("Org3MSP", ["Org1MSP", "Org3MSP"])])
def test_smallest_set_for_equal_stakes_in_name_order(me, want):
    r = rec({"Org1MSP": 100, "Org2MSP": 100, "Org3MSP": 100})
    assert stakerule.smallest_endorsing_set(me, r, r) == want


def _exact(me, rules, orgs):
    for size in range(1, len(orgs) + 1):
        for c in combinations(orgs, size):
            if me in c and all(stakerule.accepts(r, c) for r in rules):
                return size
    return None


@pytest.mark.parametrize("n", [10, 20, 50])
def test_smallest_set_satisfies_both_rules_at_any_size(n):
    orgs = [f"Org{i + 1}MSP" for i in range(n)]
    now = rec({m: (100, 200, 300)[i % 3] for i, m in enumerate(orgs)})
    life = rec({m: 100 for m in orgs})
    got = stakerule.smallest_endorsing_set("Org1MSP", now, life)
    assert "Org1MSP" in got and stakerule.accepts(now, got) and stakerule.accepts(life, got)
    for m in set(got) - {"Org1MSP"}:      # no endorser can be left out
        rest = [x for x in got if x != m]
        assert not (stakerule.accepts(now, rest) and stakerule.accepts(life, rest))
    if n <= 10:
        assert len(got) == _exact("Org1MSP", (now, life), orgs)


def test_no_set_when_the_rule_cannot_be_met():
    r = rec({"A": 60, "B": 40})
    assert stakerule.smallest_endorsing_set("X", r) == ["A", "B", "X"]      # X holds nothing: 60 < 2/3
    assert stakerule.smallest_endorsing_set("X", rec({"A": 60, "B": 40}, 1, 2)) == ["A", "X"]
    assert stakerule.smallest_endorsing_set("X", {"threshold": [1, 1], "classes": []}) is None
