"""Endorsed aggregation: every endorsing peer recomputes the aggregate from the private payloads."""
from __future__ import annotations

import base64
import hashlib

import numpy as np
from fabshim.contract import Context

from . import aggregation as agg, codec, jobs, roles, rounds, state, updates
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


def _expand_mask(seed: bytes, n: int) -> np.ndarray:
    from fedfabric.fl.secagg import expand_mask  # the app's mask expansion: one definition for both sides
    return expand_mask(seed, n)


def secure_aggregate(ctx: Context, job_id: str, r: int, metas: dict[str, dict], dropped: list[str],
                     length: int) -> tuple[np.ndarray, dict]:
    masked = [codec.unpack(_payload(ctx, updates.upd_key(ctx, job_id, r, m), metas[m]["sha256"], m), length)
              for m in sorted(metas)]
    recovered = []
    if dropped:
        reveals = {attrs[-1]: rv for attrs, rv in state.scan(ctx, state.REVEAL, job_id, state.rnd(r))}
        missing = sorted(set(metas) - set(reveals))
        if missing:
            raise fail(f"waiting for seed reveals from {', '.join(missing)} (dropped: {', '.join(dropped)})", 409)
        for s in sorted(metas):
            for d in dropped:
                seed = ctx.stub.get_private_data(UPDATES_COLLECTION, updates.seed_key(ctx, job_id, r, s, d))
                if seed is None:
                    raise fail(f"the revealed seed of {s} for {d} is not available on this peer", 503)
                if hashlib.sha256(seed).hexdigest() != reveals[s]["seed_hashes"][d]:
                    raise fail(f"hash mismatch: the revealed seed of {s} for {d} does not match its record", 500)
                recovered.append((_expand_mask(seed, length), agg.dropout_sign(s, d)))
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


def clear_aggregate(ctx: Context, job: dict, r: int, metas: dict[str, dict], length: int) -> tuple[np.ndarray, dict]:
    job_id, spec = job["job_id"], job["spec"]
    names = sorted(metas)
    values = [codec.to_signed(codec.unpack(_payload(ctx, updates.upd_key(ctx, job_id, r, m), metas[m]["sha256"], m),
                                           length)) for m in names]
    weights = [metas[m]["sample_count"] for m in names]
    try:
        out, selected = _apply_rule(spec["aggregation"], values, weights)
    except agg.AggregationError as exc:
        raise fail(f"aggregation failed: {exc}") from None
    dists = [agg.squared_distance(v, out) for v in values]
    if spec["aggregation"]["rule"] == "multi_krum":
        anomalous = [names[i] for i in range(len(names)) if i not in selected]
    else:
        med = sorted(dists)[(len(dists) - 1) // 2]
        factor = spec["incentives"]["anomaly_factor"]
        anomalous = [names[i] for i, d in enumerate(dists) if d > factor * factor * med]
    loo = {}
    for i, m in enumerate(names):
        rest = values[:i] + values[i + 1:]
        try:
            without, _ = _apply_rule(spec["aggregation"], rest, weights[:i] + weights[i + 1:])
        except agg.AggregationError:
            without, _ = _apply_rule({"rule": "fedavg"}, rest, weights[:i] + weights[i + 1:]) if rest else (out, [])
        loo[m] = agg.squared_distance(out, without) if rest else 0
    return out, {"anomalous": anomalous, "loo": {m: str(v) for m, v in loo.items()},
                 "distances": {m: str(d) for m, d in zip(names, dists)}}


def aggregate_round(ctx: Context, job_id: str, r: int) -> dict:
    org, _ = roles.require_writer(ctx, "aggregate", rounds.PARTICIPANT_ROLES)
    job = jobs.load(ctx, job_id)
    rec = rounds.load(ctx, job_id, r)
    rounds.expect(rec, rounds.COLLECTING)
    t = state.now(ctx)
    deadline = rec["deadlines"]["submission"]
    metas = {attrs[-1]: u for attrs, u in state.scan(ctx, state.UPD, job_id, state.rnd(r))}
    everyone = set(metas) == set(rec["participants"])
    if not everyone and t <= deadline:
        raise fail(f"round {r} is collecting until {deadline} ({len(metas)} of {len(rec['participants'])} submitted)", 409)
    if org["msp_id"] != rec["leader"] and t <= deadline:
        raise fail(f"only the round leader {rec['leader']} may aggregate before the window closes at {deadline}", 403)
    dropped = sorted(set(rec["participants"]) - set(metas))
    need = job["spec"]["min_participants"]
    if len(metas) < need:
        failed = rounds.advance(ctx, rec, rounds.FAILED, submitted=sorted(metas), dropped=dropped,
                                reason=f"only {len(metas)} updates submitted, {need} required")
        out = rounds.settle_failed(ctx, job, failed, absent=dropped)
        state.emit(ctx, "RoundFailed", {"job_id": job_id, "round": r, "reason": failed["reason"]})
        return out
    length = job["spec"]["model"]["num_params"]
    if rec["privacy"] == "secure":
        result, extra = secure_aggregate(ctx, job_id, r, metas, dropped, length)
    else:
        result, extra = clear_aggregate(ctx, job, r, metas, length)
    data = codec.pack(codec.from_signed(result))
    eps = [metas[m].get("dp_epsilon_milli", 0) for m in metas]
    aggregate = {"aggregate_hash": codec.sha256_hex(data), "size": len(data), "rule": job["spec"]["aggregation"]["rule"],
                 "total_samples": sum(u["sample_count"] for u in metas.values()),
                 "contributors": [{"msp_id": m, "sample_count": metas[m]["sample_count"],
                                   "update_hash": metas[m]["sha256"]} for m in sorted(metas)],
                 "dp_epsilon_milli": max(eps) if eps else 0, "aggregated_by": org["msp_id"], **extra}
    rec = rounds.advance(ctx, rec, rounds.AGGREGATED, submitted=sorted(metas), dropped=dropped, aggregate=aggregate,
                         deadlines={**rec["deadlines"], "approval": t + job["spec"]["windows"]["approval_s"]})
    ctx.stub.put_private_data(AGGREGATES_COLLECTION, agg_key(ctx, job_id, r), data)
    state.put(ctx, rounds.round_key(ctx, job_id, r), rec)
    state.emit(ctx, "RoundAggregated", {"job_id": job_id, "round": r, "aggregate_hash": aggregate["aggregate_hash"],
                                        "contributors": sorted(metas), "dropped": dropped,
                                        "approval_deadline": rec["deadlines"]["approval"]})
    return rec


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
