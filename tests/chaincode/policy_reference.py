"""The stake rule as the policy compiler it replaced wrote it, for the tests and benchmarks to compare
against: the OR of every minimal winning coalition (C(n, k) of them), and a term's plain boolean reading.
Nothing on the ledger uses these."""
from __future__ import annotations

from itertools import combinations
from typing import Iterable, Sequence

from fedfabric_cc.policy import PolicyError, Term, _check, gate, to_envelope
from fedfabric_protocol.stakerule import wins

REFERENCE_MAX_ORGS = 16        # the coalition reference enumerates 2^n subsets


def minimal_winning_coalitions(stakes: dict[str, int], num: int, den: int) -> list[tuple[str, ...]]:
    """Sets of orgs whose stake reaches num/den of the total and none of whose proper subsets does."""
    _check(stakes, num, den)
    names = sorted(m for m, s in stakes.items() if int(s) > 0)
    if len(names) > REFERENCE_MAX_ORGS:
        raise PolicyError(f"more than {REFERENCE_MAX_ORGS} staked orgs: too many subsets to enumerate")
    out: list[tuple[str, ...]] = []
    for size in range(1, len(names) + 1):
        for combo in combinations(names, size):
            if not wins(stakes, num, den, combo):
                continue
            if any(set(w) <= set(combo) for w in out):
                continue
            out.append(combo)
    return out


def coalitions_term(coalitions: Sequence[Sequence[str]]) -> Term:
    """OR of ANDs: the policy of a list of coalitions."""
    if not coalitions:
        raise PolicyError("no winning coalition")
    return gate(1, [gate(len(c), list(c)) for c in coalitions])


def signature_policy_envelope(coalitions: Sequence[Sequence[str]]) -> bytes:
    """Envelope bytes of an explicit list of coalitions (an OR of ANDs)."""
    return to_envelope(coalitions_term(coalitions))


def term_satisfied(term: Term, signers: Iterable[str]) -> bool:
    """Plain boolean reading of a term (each org counted once per gate)."""
    s = set(signers)
    if isinstance(term, str):
        return term in s
    return sum(term_satisfied(k, s) for k in term[1]) >= term[0]
