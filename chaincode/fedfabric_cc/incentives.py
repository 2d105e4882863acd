"""Rewards (balance) and slashing (stake) when a round settles; private payloads purged."""
from __future__ import annotations

from fabshim.contract import Context

from . import members, updates
from .state import UPDATES_COLLECTION


def split(pool: int, weights: dict[str, int]) -> dict[str, int]:
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


def reward_weights(rec: dict) -> dict[str, int]:
    """Sample share; in clear mode the leave-one-out contribution of non-anomalous updates."""
    a = rec["aggregate"]
    bad = set(a.get("anomalous", []))
    if rec["privacy"] == "clear":
        loo = {m: int(v) for m, v in a.get("loo", {}).items() if m not in bad}
        if sum(loo.values()) > 0:
            return loo
    return {c["msp_id"]: c["sample_count"] for c in a["contributors"] if c["msp_id"] not in bad}


def penalties(inc: dict, absent: list[str], anomalous: list[str], no_reveal: list[str]) -> dict[str, int]:
    """Stake to slash per org: registered-but-absent, anomalous update, seeds not revealed in time."""
    out: dict[str, int] = {}
    for orgs, amount in ((absent, inc["slash_absent"]), (anomalous, inc["slash_anomalous"]),
                         (no_reveal, inc.get("slash_no_reveal", inc["slash_absent"]))):
        for m in orgs:
            out[m] = out.get(m, 0) + amount
    return out


def settle(ctx: Context, job: dict, rec: dict, rewards: dict[str, int], absent: list[str],
           anomalous: list[str], no_reveal: list[str] = ()) -> dict:
    """Apply rewards (to balance) and slashes (from stake); write history; purge the round's payloads."""
    inc = job["spec"]["incentives"]
    payout = split(inc["reward_per_round"], rewards)
    cuts = penalties(inc, list(absent), list(anomalous), list(no_reveal))
    orgs = members.all_orgs(ctx)
    before = {m: orgs[m] for m in set(payout) | set(cuts) if m in orgs}
    after = {m: dict(o) for m, o in before.items()}
    slashed: dict[str, int] = {}
    for m in sorted(before):
        after[m]["balance"] += payout.get(m, 0)
        cut = min(cuts.get(m, 0), after[m]["stake"])
        if cut and sum(members.stakes({**orgs, **after}).values()) - cut > 0:
            after[m]["stake"] -= cut
            slashed[m] = cut
    ref = {"job_id": job["job_id"], "round": rec["round"]}
    compiled = members.write_changes(ctx, before, after, "round-settlement", ref)
    for m in rec.get("submitted", []):
        ctx.stub.purge_private_data(UPDATES_COLLECTION, updates.upd_key(ctx, job["job_id"], rec["round"], m))
    for s in rec.get("submitted", []) if rec.get("dropped") else []:
        for d in rec["dropped"]:
            ctx.stub.purge_private_data(UPDATES_COLLECTION, updates.seed_key(ctx, job["job_id"], rec["round"], s, d))
    return {"rewards": payout, "slashed": slashed, "policy": compiled["policy"] if compiled else None,
            "envelope_hex": compiled["envelope_hex"] if compiled else None}
