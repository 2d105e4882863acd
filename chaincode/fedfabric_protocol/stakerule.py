"""The stake rule of endorsement, "orgs holding >= num/den of the stake", as both sides read it.

The contract compiles the rule into a Fabric signature policy (``fedfabric_cc.policy``) and keeps a
record of it on the ledger: the threshold, the stake classes (orgs of equal stake, largest stake
first) and the minimal count vectors. A client reads that record to choose its endorsers: any set
of orgs the rule accepts, the fewest it can find, containing its own org. Integer arithmetic only.
"""
from __future__ import annotations

from itertools import combinations
from typing import Any, Iterable, Mapping, Optional

EXACT_SEARCH_MAX_ORGS = 12   # up to this many orgs the smallest endorsing set is found by exhaustive search


def stake_classes(stakes: Mapping[str, int]) -> list[tuple[int, tuple[str, ...]]]:
    """Orgs with stake grouped by stake: ``[(stake, (msp, ...)), ...]``, largest stake first, names sorted."""
    by: dict[int, list[str]] = {}
    for m, s in stakes.items():
        if int(s) > 0:
            by.setdefault(int(s), []).append(m)
    return [(s, tuple(sorted(by[s]))) for s in sorted(by, reverse=True)]


def wins(stakes: Mapping[str, int], num: int, den: int, orgs: Iterable[str]) -> bool:
    """Do ``orgs`` hold at least num/den of the total stake?"""
    total = sum(int(s) for s in stakes.values() if int(s) > 0)
    held = sum(int(stakes.get(m, 0)) for m in set(orgs) if int(stakes.get(m, 0)) > 0)
    return total > 0 and held * den >= num * total


def accepts(rule: Mapping[str, Any], orgs: Iterable[str]) -> bool:
    """Does the rule (a policy record, or its ``lifecycle`` entry) accept endorsements from ``orgs``?"""
    num, den = rule["threshold"]
    return wins(_stakes(rule), int(num), int(den), orgs)


def lifecycle_rule(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The rule of the chaincode's lifecycle policy from a policy record: its ``lifecycle`` entry, else
    the record's own rule."""
    return record["lifecycle"] if "lifecycle" in record else own_rule(record)


def own_rule(record: Mapping[str, Any]) -> dict:
    """The part of a policy record that says which sets win: its threshold and stake classes."""
    return {"threshold": list(record["threshold"]), "classes": record["classes"]}


def rule_orgs(rule: Mapping[str, Any]) -> list[str]:
    """Every org the rule gives weight to."""
    return sorted(_stakes(rule))


def _stakes(rule: Mapping[str, Any]) -> dict[str, int]:
    """Each org's stake under the rule, from its stake classes."""
    return {m: int(c["stake"]) for c in rule["classes"] for m in c["orgs"]}


def _weights(rule: Mapping[str, Any]) -> tuple[dict[str, int], int]:
    """Each org's share of the rule's threshold in comparable integers: (weights, total weight)."""
    stakes = _stakes(rule)
    return stakes, max(1, sum(stakes.values()))


def smallest_endorsing_set(me: str, *rules: Mapping[str, Any]) -> Optional[list[str]]:
    """The fewest orgs, including ``me``, that every rule in ``rules`` accepts (None if there is none).

    Exact up to :data:`EXACT_SEARCH_MAX_ORGS` orgs (first in size, then name order); beyond that the
    orgs holding the most stake are added first (ties by name) and the ones not needed dropped again.
    """
    orgs = sorted(set().union(*(rule_orgs(r) for r in rules)) | {me})
    if not all(accepts(r, orgs) for r in rules):
        return None
    others = [m for m in orgs if m != me]
    if len(orgs) <= EXACT_SEARCH_MAX_ORGS:
        for size in range(0, len(others) + 1):
            for combo in combinations(others, size):
                s = (me, *combo)
                if all(accepts(r, s) for r in rules):
                    return sorted(s)
        return None
    weighted = [_weights(r) for r in rules]

    def share(m: str) -> tuple:
        # sum over rules of the org's fraction of the rule's stake, compared exactly: a common denominator
        den = 1
        for _, tot in weighted:
            den *= tot
        return (-sum(st.get(m, 0) * (den // tot) for st, tot in weighted), m)

    chosen = [me]
    for m in sorted(others, key=share):
        if all(accepts(r, chosen) for r in rules):
            break
        chosen.append(m)
    for m in reversed(chosen[1:]):        # drop what is not needed, the least weighty first
        rest = [x for x in chosen if x != m]
        if all(accepts(r, rest) for r in rules):
            chosen = rest
    return sorted(chosen)
