"""Stake-weighted endorsement: a weighted-threshold rule as a Fabric signature policy string.

"Orgs holding >= q of the stake" is the OR of its minimal winning coalitions, each an AND of the
members' peers. Exact (Fraction) arithmetic; coalitions are listed in a canonical order.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations


def minimal_winning_coalitions(stakes: dict[str, int], quorum: Fraction) -> list[tuple[str, ...]]:
    """Every set of members whose stake reaches ``quorum`` of the total and none of whose proper
    subsets does, each sorted, the list sorted by (size, names)."""
    total = sum(stakes.values())
    if total <= 0:
        raise ValueError("total stake must be positive")
    names = sorted(m for m, s in stakes.items() if s > 0)
    need = quorum * total
    out: list[tuple[str, ...]] = []
    for size in range(1, len(names) + 1):
        for combo in combinations(names, size):
            if sum(stakes[m] for m in combo) < need:
                continue
            if any(set(w) <= set(combo) for w in out):
                continue
            out.append(combo)
    return out


def signature_policy(stakes: dict[str, int], quorum: Fraction, role: str = "peer") -> str:
    """The lifecycle ``--signature-policy`` string, e.g. ``OR(AND('Org1MSP.peer','Org2MSP.peer'),...)``."""
    coalitions = minimal_winning_coalitions(stakes, quorum)

    def conj(c: tuple[str, ...]) -> str:
        principals = ",".join(f"'{m}.{role}'" for m in c)
        return principals if len(c) == 1 else f"AND({principals})"

    parts = [conj(c) for c in coalitions]
    return parts[0] if len(parts) == 1 else f"OR({','.join(parts)})"
