"""Rewards (balance) and slashing (stake) when a round closes."""
from __future__ import annotations

from typing import Mapping

from fabshim.contract import Context
from fedfabric_protocol.spec import Incentives

from . import members, policy


def split(pool: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Integer shares of ``pool`` proportional to ``weights`` (largest remainder, ties by name)."""
    total = sum(w for w in weights.values() if w > 0)
    if pool <= 0 or total <= 0:
        return {}
    base = {m: pool * w // total for m, w in weights.items() if w > 0}
    rem = pool - sum(base.values())
    order = sorted(base, key=lambda m: (-(pool * weights[m] % total), m))
    for m in order[:rem]:
        base[m] += 1
    return {m: v for m, v in base.items() if v > 0}


def penalties(inc: Incentives, absent: list[str], anomalous: list[str], no_reveal: list[str]) -> dict[str, int]:
    """Stake to slash per org: registered-but-absent, flagged update, seeds not revealed in time."""
    out: dict[str, int] = {}
    for orgs, amount in ((absent, inc.slash_absent), (anomalous, inc.slash_anomalous),
                         (no_reveal, inc.slash_no_reveal)):
        for m in orgs:
            out[m] = out.get(m, 0) + amount
    return out


def settle(ctx: Context, inc: Incentives, job_id: str, r: int, orgs: Mapping[str, dict],
           reward_weights: Mapping[str, int], absent: list[str], anomalous: list[str] = (),
           no_reveal: list[str] = ()) -> dict:
    """Pay the round's reward pool by ``reward_weights`` and slash offenders (never the last stake); write
    the org records and their history. ``orgs``: the point-read records of at least every org named.
    Slashing that would leave a stake vector without a compact exact endorsement policy is not applied
    (``slash_skipped`` says why): a round always closes."""
    payout = split(inc.reward_per_round, reward_weights)
    cuts = penalties(inc, list(absent), list(anomalous), list(no_reveal))
    before = {m: orgs[m] for m in sorted(set(payout) | set(cuts)) if m in orgs}
    after = {m: dict(o) for m, o in before.items()}
    slashed: dict[str, int] = {}
    for m in sorted(before):
        after[m]["balance"] += payout.get(m, 0)
        cut = min(cuts.get(m, 0), after[m]["stake"])
        if cut and sum(members.stakes({**orgs, **after}).values()) - cut > 0:
            after[m]["stake"] -= cut
            slashed[m] = cut
    skipped, slashed_policy = None, None
    if slashed:
        num, den = members.consortium(ctx)["quorum"]
        try:
            slashed_policy = policy.compile_policy(members.stakes({**members.all_orgs(ctx), **after}), num, den)
        except policy.PolicyError as exc:
            skipped = str(exc)
            for m, cut in slashed.items():
                after[m]["stake"] += cut
            slashed = {}
    compiled = members.write_changes(ctx, before, after, "round-settlement", {"job_id": job_id, "round": r},
                                     compiled=slashed_policy)
    return {"rewards": payout, "slashed": slashed, "slash_skipped": skipped,
            "policy": policy.summary(compiled),
            "envelope": bytes.fromhex(compiled["envelope_hex"]) if compiled else None,
            "orgs": {**orgs, **after}}
