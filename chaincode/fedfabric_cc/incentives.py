"""Rewards (balance) and slashing (stake) when a round closes."""
from __future__ import annotations

from typing import Mapping

from fabshim.contract import Context
from fedfabric_protocol.spec import Incentives

from . import members, policy

MAX_LEVEL_TRIES = 4     # offenders whose level drop is compiled alone when the drops together do not fit


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

    What an offender owes is its earlier debt (``slash_owed``) plus this round's penalties, at most its
    stake. It is taken whole when the stake vector left has a compact exact endorsement policy. If not,
    each offender's stake drops to the lowest stake level that another active member holds (or zero)
    and that is not below its stake minus what it owes; the rest stays owed. Such a slash adds no stake
    class, so a consortium at the policy's limit still slashes, by whole levels and never by more than
    is owed. When the drops together do not compile, they are tried one offender at a time, the largest
    debt first. What is not taken stays owed (``slash_deferred`` says why). A round always closes."""
    payout = split(inc.reward_per_round, reward_weights)
    cuts = penalties(inc, list(absent), list(anomalous), list(no_reveal))
    before = {m: orgs[m] for m in sorted(set(payout) | set(cuts)) if m in orgs}
    after = {m: {**o, "balance": o["balance"] + payout.get(m, 0)} for m, o in before.items()}
    owes: dict[str, int] = {}
    left = sum(members.stakes({**orgs, **after}).values())     # what the slashes may not take to zero
    for m in sorted(cuts):
        if m in after and cuts[m]:
            due = min(members.owed(after[m]) + cuts[m], after[m]["stake"])
            if due and left - due > 0:
                owes[m] = due
                left -= due
    compiled, deferred = None, None
    if owes:
        everyone = members.all_orgs(ctx)
        num, den = members.consortium(ctx)["quorum"]
        exact = {m: after[m]["stake"] - d for m, d in owes.items()}
        try:
            compiled, drop = policy.compile_policy(_with(everyone, after, exact), num, den), exact
        except policy.PolicyError as exc:
            deferred = str(exc)
            compiled, drop = _drop_levels(everyone, after, owes, num, den)
        for m, d in owes.items():
            stake = drop.get(m, after[m]["stake"])
            after[m] = {**after[m], "stake": stake, "slash_owed": d - (after[m]["stake"] - stake)}
    written = members.write_changes(ctx, before, after, "round-settlement", {"job_id": job_id, "round": r},
                                    compiled=compiled)
    return {"rewards": payout,
            "slashed": {m: before[m]["stake"] - after[m]["stake"] for m in owes
                        if after[m]["stake"] < before[m]["stake"]},
            "owed": {m: after[m]["slash_owed"] for m in owes if after[m]["slash_owed"]},
            "slash_deferred": deferred,
            "policy": policy.summary(written),
            "envelope": bytes.fromhex(written["envelope_hex"]) if written else None,
            "orgs": {**orgs, **after}}


def _with(everyone: Mapping[str, dict], after: Mapping[str, dict], stake: Mapping[str, int]) -> dict[str, int]:
    """The active stake vector once ``after`` is written and the orgs of ``stake`` hold those stakes."""
    return members.stakes({**everyone, **after, **{m: {**after[m], "stake": s} for m, s in stake.items()}})


def _drop_levels(everyone: Mapping[str, dict], after: Mapping[str, dict], owes: Mapping[str, int], num: int,
                 den: int) -> tuple[dict | None, dict[str, int]]:
    """(compiled policy, stake per offender that drops) for the level drops taken: all of them if their
    stake vector compiles, else one offender at a time, the largest debt first (at most
    MAX_LEVEL_TRIES more compiles), each kept when the drops kept so far and it still compile."""
    drop = _levels(everyone, after, owes)
    if not drop:
        return None, {}
    try:
        return policy.compile_policy(_with(everyone, after, drop), num, den), drop
    except policy.PolicyError:
        if len(drop) == 1:
            return None, {}
    compiled, kept = None, {}
    for m in sorted(drop, key=lambda m: (-owes[m], m))[:MAX_LEVEL_TRIES]:
        try:
            compiled = policy.compile_policy(_with(everyone, after, {**kept, m: drop[m]}), num, den)
        except policy.PolicyError:
            continue
        kept[m] = drop[m]
    return compiled, kept


def _levels(everyone: Mapping[str, dict], after: Mapping[str, dict], owes: Mapping[str, int]) -> dict[str, int]:
    """The stake each offender drops to when its whole debt cannot be taken: the lowest level held by an
    active member that is not an offender (or zero) at or above ``stake - owed``; only the offenders
    that drop."""
    held = {0} | {s for m, s in members.stakes({**everyone, **after}).items() if m not in owes and s > 0}
    out = {}
    for m, d in sorted(owes.items()):
        level = min((v for v in held if v >= after[m]["stake"] - d), default=after[m]["stake"])
        if level < after[m]["stake"]:
            out[m] = level
    return out
