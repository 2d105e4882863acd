"""Endorsed aggregation: every endorsing peer recomputes the aggregate from the private payloads."""
from __future__ import annotations

import base64
import hashlib
from typing import Optional

import numpy as np
from fabshim.contract import Context

from . import aggregation as agg, codec, jobs, masks, roles, rounds, state, updates
from .state import AGGREGATES_COLLECTION, UPDATES_COLLECTION, fail


def agg_key(ctx: Context, job_id: str, r: int) -> str:
    return state.key(ctx, state.AGG, job_id, state.rnd(r))


def _payload(ctx: Context, k: str, want_sha: str, who: str) -> bytes:
    data = ctx.stub.get_private_data(UPDATES_COLLECTION, k)
    if data is None:
        raise fail(f"the private payload of {who} is not available on this peer", 503)
    if hashlib.sha256(data).hexdigest() != want_sha:
        raise fail(f"hash mismatch: the private payload of {who} does not match its recorded SHA-256", 500)
    return data


def missing_reveals(rec: dict, metas: dict[str, dict], reveals: dict[str, dict]) -> list[str]:
    """Survivors of a secure round with dropouts that have not revealed their seeds yet."""
    dropped = set(rec["participants"]) - set(metas)
    return sorted(set(metas) - set(reveals)) if rec["privacy"] == "secure" and dropped else []


def secure_aggregate(ctx: Context, job_id: str, r: int, metas: dict[str, dict], dropped: list[str],
                     reveals: dict[str, dict], length: int) -> tuple[np.ndarray, dict]:
    """FedAvg from the masked updates and (for dropped orgs) the survivors' revealed seeds."""
    masked = [codec.unpack(_payload(ctx, updates.upd_key(ctx, job_id, r, m), metas[m]["sha256"], m), length)
              for m in sorted(metas)]
    recovered = []
    if dropped:
        for s in sorted(metas):
            for d in dropped:
                seed = ctx.stub.get_private_data(UPDATES_COLLECTION, updates.seed_key(ctx, job_id, r, s, d))
                if seed is None:
                    raise fail(f"the revealed seed of {s} for {d} is not available on this peer", 503)
                if hashlib.sha256(seed).hexdigest() != reveals[s]["seed_hashes"][d]:
                    raise fail(f"hash mismatch: the revealed seed of {s} for {d} does not match its record", 500)
                recovered.append((masks.expand_mask(seed, length), agg.dropout_sign(s, d)))
    total = agg.secure_sum(masked, recovered)
    samples = sum(metas[m]["sample_count"] for m in metas)
    avg = agg.fedavg_from_weighted_sum(total, samples)
    return avg, {"sum_hash": codec.sha256_hex(codec.pack(total)), "anomalous": [], "loo": {}}


def _apply_rule(rule: dict, values: list[np.ndarray], weights: list[int]) -> tuple[np.ndarray, list[int]]:
    name = rule["rule"]
    if name == "fedavg":
        return agg.fedavg(values, weights), list(range(len(values)))
    if name == "trimmed_mean":
        return agg.trimmed_mean(values, rule["trim"]), list(range(len(values)))
    if name == "median":
        return agg.coordinate_median(values), list(range(len(values)))
    return agg.multi_krum(values, rule["krum_f"], rule.get("krum_m"))


def _leave_one_out(rule: dict, out: np.ndarray, values: list[np.ndarray], weights: list[int],
                   names: list[str]) -> dict[str, str]:
    """How far the aggregate moves without each update (a rule that cannot run on n-1 falls back to FedAvg)."""
    loo = {}
    for i, m in enumerate(names):
        rest, w = values[:i] + values[i + 1:], weights[:i] + weights[i + 1:]
        if not rest:
            loo[m] = 0
            continue
        try:
            without, _ = _apply_rule(rule, rest, w)
        except agg.AggregationError:
            without, _ = _apply_rule({"rule": "fedavg"}, rest, w)
        loo[m] = agg.squared_distance(out, without)
    return {m: str(v) for m, v in loo.items()}


def clear_aggregate(ctx: Context, job: dict, r: int, metas: dict[str, dict], length: int) -> tuple[np.ndarray, dict]:
    """The job's rule over the visible updates; anomaly scores against their unweighted median.
    Raises ``AggregationError`` when the rule cannot be applied to these updates."""
    job_id, spec = job["job_id"], job["spec"]
    rule = spec["aggregation"]
    names = sorted(metas)
    values = [codec.to_signed(codec.unpack(_payload(ctx, updates.upd_key(ctx, job_id, r, m), metas[m]["sha256"], m),
                                           length)) for m in names]
    weights = [metas[m]["sample_count"] for m in names]
    out, selected = _apply_rule(rule, values, weights)
    dists, flagged = agg.anomaly_scores(values, spec["incentives"]["anomaly_factor"])
    if rule["rule"] == "multi_krum":
        flagged = [i for i in range(len(names)) if i not in selected]
    return out, {"anomalous": [names[i] for i in flagged], "loo": _leave_one_out(rule, out, values, weights, names),
                 "distances": {m: str(d) for m, d in zip(names, dists)}, "distance_reference": "coordinate_median"}


def collecting_failure(rec: dict, job: dict, metas: dict[str, dict], reveals: dict[str, dict],
                       t: int, expired: bool = False) -> Optional[dict]:
    """Why a collecting round whose submission window closed must fail now (``fail_round`` keyword
    arguments), or None while it can still be aggregated; with ``expired`` (its reveal deadline has
    passed unaggregated) there is always a reason. Public state only: every endorser agrees."""
    need = job["spec"]["min_participants"]
    dropped = sorted(set(rec["participants"]) - set(metas))
    base = {"submitted": sorted(metas), "dropped": dropped, "absent": dropped}
    if len(metas) < need:
        return {**base, "reason": f"only {len(metas)} updates submitted, {need} required"}
    deadline = rounds.reveal_deadline(rec)
    missing = missing_reveals(rec, metas, reveals)
    if missing and t > deadline:
        return {**base, "no_reveal": missing,
                "reason": f"{', '.join(missing)} did not reveal their seeds for {', '.join(dropped)} by {deadline}"}
    if expired:
        return {**base, "reason": f"not aggregated by the deadline {deadline}"}
    return None


def _release(ctx: Context, job: dict, rec: dict, metas: dict[str, dict], dropped: list[str], result: np.ndarray,
             extra: dict, by: str, t: int) -> dict:
    """Write the aggregate (private, never purged), the aggregated round and the job's privacy spend."""
    job_id, r, spec = job["job_id"], rec["round"], job["spec"]
    data = codec.pack(codec.from_signed(result))
    eps = max([metas[m].get("dp_epsilon_milli", 0) for m in metas], default=0)
    spent = job.get("dp_epsilon_spent_milli", 0) + eps
    aggregate = {"aggregate_hash": codec.sha256_hex(data), "size": len(data), "rule": spec["aggregation"]["rule"],
                 "total_samples": sum(u["sample_count"] for u in metas.values()),
                 "contributors": [{"msp_id": m, "sample_count": metas[m]["sample_count"],
                                   "update_hash": metas[m]["sha256"]} for m in sorted(metas)],
                 "dp_epsilon_milli": eps, "dp_epsilon_total_milli": spent,
                 "dp_budget_exceeded": bool(spec["dp"]["enabled"] and spent > spec["dp"]["epsilon_budget_milli"]),
                 "aggregated_by": by, **extra}
    rec = rounds.advance(ctx, rec, rounds.AGGREGATED, submitted=sorted(metas), dropped=dropped, aggregate=aggregate,
                         deadlines={**rec["deadlines"], "approval": t + spec["windows"]["approval_s"]})
    ctx.stub.put_private_data(AGGREGATES_COLLECTION, agg_key(ctx, job_id, r), data)
    state.put(ctx, rounds.round_key(ctx, job_id, r), rec)
    state.put(ctx, jobs.job_key(ctx, job_id), {**job, "dp_epsilon_spent_milli": spent})
    state.emit(ctx, "RoundAggregated", {"job_id": job_id, "round": r, "aggregate_hash": aggregate["aggregate_hash"],
                                        "contributors": sorted(metas), "dropped": dropped,
                                        "approval_deadline": rec["deadlines"]["approval"],
                                        "dp_epsilon_total_milli": spent})
    return rec


def aggregate_round(ctx: Context, job_id: str, r: int) -> dict:
    org, _ = roles.require_writer(ctx, "aggregate", rounds.PARTICIPANT_ROLES)
    job = jobs.load(ctx, job_id)
    rec = rounds.load(ctx, job_id, r)
    rounds.expect(rec, rounds.COLLECTING)
    t = state.now(ctx)
    deadline = rec["deadlines"]["submission"]
    metas = state.by_org(ctx, state.UPD, job_id, r)
    everyone = set(metas) == set(rec["participants"])
    if not everyone and t <= deadline:
        raise fail(f"round {r} is collecting until {deadline} ({len(metas)} of {len(rec['participants'])} submitted)", 409)
    if org["msp_id"] != rec["leader"] and t <= deadline:
        raise fail(f"only the round leader {rec['leader']} may aggregate before the window closes at {deadline}", 403)
    dropped = sorted(set(rec["participants"]) - set(metas))
    reveals = state.by_org(ctx, state.REVEAL, job_id, r) if dropped and rec["privacy"] == "secure" else {}
    why = collecting_failure(rec, job, metas, reveals, t)
    if why is not None:
        return rounds.fail_round(ctx, job, rec, **why)
    missing = missing_reveals(rec, metas, reveals)
    if missing:
        raise fail(f"waiting for seed reveals from {', '.join(missing)} (dropped: {', '.join(dropped)}) "
                   f"until {rounds.reveal_deadline(rec)}", 409)
    length = job["spec"]["model"]["num_params"]
    try:
        if rec["privacy"] == "secure":
            result, extra = secure_aggregate(ctx, job_id, r, metas, dropped, reveals, length)
        else:
            result, extra = clear_aggregate(ctx, job, r, metas, length)
    except agg.AggregationError as exc:
        return rounds.fail_round(ctx, job, rec, f"aggregation failed: {exc}", absent=dropped,
                                 submitted=sorted(metas), dropped=dropped)
    return _release(ctx, job, rec, metas, dropped, result, extra, org["msp_id"], t)


def get_aggregate(ctx: Context, job_id: str, r: int) -> dict:
    roles.require_reader(ctx)
    rec = rounds.load(ctx, job_id, r)
    if "aggregate" not in rec:
        raise fail(f"round {r} of job {job_id} has no aggregate (state {rec['state']})", 409)
    data = ctx.stub.get_private_data(AGGREGATES_COLLECTION, agg_key(ctx, job_id, r))
    if data is None:
        raise fail(f"the aggregate of round {r} is not available on this peer", 503)
    return {"job_id": job_id, "round": r, "aggregate_hash": rec["aggregate"]["aggregate_hash"],
            "dtype": codec.DTYPE, "frac_bits": codec.FRAC_BITS, "data_b64": base64.b64encode(data).decode()}
