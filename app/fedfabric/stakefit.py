"""Before a stake change is sent: does the stake vector it leaves still have an exact endorsement
policy under the contract's limit, and if not, which nearby amounts would.

The contract refuses a change whose stake vector has no compact exact policy (``fedfabric_cc.policy``:
orgs of equal stake share one ``OutOf`` gate; five or more distinct stakes apart by uneven steps can
need more than 64 KiB). This module runs the same compiler on the client, so that a command can refuse
before any transaction and say what would be accepted: the amounts that make a changed org's stake
equal to a stake another member already holds (joining its class adds no class), nearest first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from fedfabric_cc import policy
from fedfabric_protocol.tally import active_stakes

MAX_ALTERNATIVES = 3    # fitting amounts a refusal names
MAX_TRIED = 8           # candidate amounts compiled at most (a refused compile costs up to ~1 s)


@dataclass(frozen=True)
class Alternative:
    """An amount the contract would accept instead, and what it leads to."""

    amount: int
    joins: int              # the stake the changed org then shares with other members
    envelope_bytes: int


class StakeChangeRefused(ValueError):
    """The change leaves a stake vector with no exact endorsement policy under the limit."""

    def __init__(self, message: str, alternatives: list[Alternative]):
        super().__init__(message)
        self.alternatives = alternatives


def check(orgs: Iterable[Mapping], quorum: tuple[int, int], amount: int, moves: Mapping[str, int],
          positive: bool = False) -> Optional[int]:
    """Envelope bytes of the endorsement policy after a change of ``amount``.

    ``orgs`` are ``list_orgs`` records; the change moves each org of ``moves`` by its sign times the
    amount (a transfer: the sender -1, the receiver +1, and ``positive``: only amounts above zero).
    The contract takes an amount that is not zero and leaves no stake negative; a transfer also
    leaves the sender the stake it owes to slashing. None for an amount it does not take, a change
    naming a non-member, or one that leaves no active stake (the contract says why).
    :class:`StakeChangeRefused` with up to :data:`MAX_ALTERNATIVES` fitting amounts when the policy
    would not fit."""
    records = {o["msp_id"]: dict(o) for o in orgs}
    if not moves or any(m not in records for m in moves):
        return None

    def valid(a: int) -> bool:
        return a != 0 and (a > 0 or not positive) and all(
            int(records[m]["stake"]) - (int(records[m].get("slash_owed", 0)) if positive else 0) + sign * a >= 0
            for m, sign in moves.items())

    if not valid(amount):
        return None

    def after(a: int) -> dict[str, int]:
        moved = {m: {**records[m], "stake": int(records[m]["stake"]) + sign * a} for m, sign in moves.items()}
        return active_stakes({**records, **moved})

    stakes = after(amount)
    if sum(stakes.values()) <= 0:
        return None
    try:
        return policy.compile_policy(stakes, *quorum)["size"]["envelope_bytes"]
    except policy.PolicyError as exc:
        refusal = str(exc)
    held = sorted({s for m, s in active_stakes(records).items() if s > 0 and m not in moves})
    candidates: dict[int, int] = {}                     # amount -> the stake it gives a moved org
    for _, a, v in sorted((abs(a - amount), a, v) for m, sign in moves.items() for v in held
                          for a in [(v - int(records[m]["stake"])) * sign] if a != amount and valid(a)):
        candidates.setdefault(a, v)
    found: list[Alternative] = []
    for a, v in list(candidates.items())[:MAX_TRIED]:
        try:
            found.append(Alternative(a, v, policy.compile_policy(after(a), *quorum)["size"]["envelope_bytes"]))
        except policy.PolicyError:
            continue
        if len(found) == MAX_ALTERNATIVES:
            break
    raise StakeChangeRefused(refusal, found)
