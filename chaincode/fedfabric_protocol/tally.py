"""Stake: the round's electorate, the stake-weighted vote tally, the stake-weighted leader draw.

Weights always come from the round's stake snapshot (taken when it opened), never from a ballot.
A result wins when the stake approving exactly that result reaches ``num/den`` of the electorate's
stake (orgs suspended since the round opened are left out of both sides). Integer arithmetic only.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import AbstractSet, Any, Mapping, Optional

from .errors import refuse
from .states import MemberStatus


def active_stakes(orgs: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Voting stake of the members: active orgs only (``orgs``: MSP id -> org record)."""
    return {m: int(o["stake"]) for m, o in orgs.items() if o["status"] == MemberStatus.ACTIVE.value}


def electorate(participants: list[str], orgs: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """The job's participants that are active members with stake now, with their stake."""
    st = active_stakes(orgs)
    return {m: st[m] for m in sorted(participants) if st.get(m, 0) > 0}


@dataclass(frozen=True)
class VoteWeight:
    """One counted ballot: approve or not, the result key it approves."""

    approve: bool
    result_key: Optional[str]


@dataclass(frozen=True)
class Tally:
    total_stake: int
    approve_by_result: Mapping[str, int]
    pending_stake: int
    winner: Optional[str]
    reachable: bool
    quorum: tuple[int, int]
    excluded: tuple[str, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["approve_by_result"] = dict(sorted(self.approve_by_result.items()))
        d["quorum"], d["excluded"] = list(self.quorum), list(self.excluded)
        return d


def tally(stakes: Mapping[str, int], quorum: tuple[int, int], votes: Mapping[str, VoteWeight],
          excluded: AbstractSet[str] = frozenset()) -> Tally:
    """Stake-weighted tally of ``votes`` (MSP id -> ballot) over the snapshot ``stakes``."""
    num, den = quorum
    st = {m: int(s) for m, s in stakes.items() if m not in excluded and int(s) > 0}
    counted = {m: v for m, v in votes.items() if m in st}
    total = sum(st.values())
    by_result: dict[str, int] = {}
    for m, v in sorted(counted.items()):
        if v.approve and v.result_key is not None:
            by_result[v.result_key] = by_result.get(v.result_key, 0) + st[m]
    pending = sum(s for m, s in st.items() if m not in counted)
    winner = None
    for key, s in sorted(by_result.items(), key=lambda kv: (-kv[1], kv[0])):
        if total > 0 and s * den >= num * total:
            winner = key
            break
    best = max(by_result.values(), default=0)
    return Tally(total, by_result, pending, winner, total > 0 and (best + pending) * den >= num * total,
                 (num, den), tuple(sorted(set(stakes) & set(excluded))))


def draw_leader(stakes: Mapping[str, int], seed_hash: str, job_id: str, r: int) -> dict:
    """Stake-weighted deterministic draw of round ``r``'s leader, seeded by a model hash on the ledger."""
    total = sum(int(s) for s in stakes.values() if int(s) > 0)
    if total <= 0:
        raise refuse("no active stake to draw a leader from", 409)
    seed = hashlib.sha256(f"{seed_hash}|{job_id}|{r}".encode()).digest()
    value = int.from_bytes(seed, "big") % total
    acc = 0
    for msp in sorted(stakes):
        acc += max(0, int(stakes[msp]))
        if value < acc:
            return {"leader": msp, "seed": seed.hex(), "value": value, "total_stake": total}
    raise AssertionError("unreachable")
