"""Round and org summaries: who took part, what they sent, how they voted, what they earned or lost."""
from __future__ import annotations

from typing import Any

from .common import ask, block_finder, combine_metrics, resolve_org

SETTLEMENT = "round-settlement"
STATE_ORDER = ("open", "registration", "collecting", "aggregated", "finalized", "failed")


def settlements(client: Any, job_id: str, orgs: list[dict] | None = None) -> dict[int, dict[str, dict]]:
    """``{round: {msp: {"reward": balance gained, "slash": stake lost}}}`` for every settled round of a job.

    Read from each org's stake/balance history, so failed rounds (slashes only) are included.
    """
    out: dict[int, dict[str, dict]] = {}
    for o in orgs if orgs is not None else ask(client.list_orgs):
        for e in ask(client.org_history, o["msp_id"]):
            ref = e.get("ref") or {}
            if e.get("reason") != SETTLEMENT or ref.get("job_id") != job_id:
                continue
            row = out.setdefault(int(ref["round"]), {}).setdefault(o["msp_id"], {"reward": 0, "slash": 0})
            if e["field"] == "balance":
                row["reward"] += int(e["delta"])
            elif e["field"] == "stake":
                row["slash"] -= int(e["delta"])
    return out


def round_summary(client: Any, job_id: str, round_: int, *, blocks: bool = True,
                  settled: dict[int, dict[str, dict]] | None = None) -> dict:
    """One round of a job as the ledger recorded it.

    Keys: job_id, round, state, reason, leader, base_version, base_hash, version, model_hash,
    privacy, quorum, stakes, tally, times, deadlines, dropped, participants (one row per org:
    stake, registered, submitted, sample_count, update_hash, update metrics, vote, vote metrics,
    revealed_for), contributors, metrics (votes' metrics combined, stake-weighted), rewards,
    slashed, tx_ids and blocks (per round transition). Unknown job or round: :class:`BadInput`.
    """
    rep = ask(client.round_report, job_id, int(round_))
    rec = rep["round"]
    find_block = block_finder(client) if blocks else (lambda tx: None)
    participants = []
    for msp, p in sorted(rep["participants"].items()):
        u, v = p.get("update"), p.get("vote")
        participants.append({
            "msp_id": msp, "stake": p.get("stake", 0), "registered": p.get("registered_at") is not None,
            "submitted": u is not None, "sample_count": u["sample_count"] if u else None,
            "update_hash": u["sha256"] if u else None, "update_size": u["size"] if u else None,
            "update_tx": u["tx_id"] if u else None, "update_metrics": dict(u.get("metrics") or {}) if u else {},
            "training": dict(u.get("training") or {}) if u else {},
            "vote": None if v is None else ("approve" if v["approve"] else "reject"),
            "vote_model_hash": v.get("model_hash") if v else None, "vote_metrics": dict(v.get("metrics") or {}) if v else {},
            "vote_tx": v.get("tx_id") if v else None, "register_tx": p.get("register_tx"),
            "revealed_for": list(p.get("revealed_for") or []),
            "dropped": msp in rec.get("dropped", []),
        })
    version = None
    if rec.get("state") == "finalized" and rec.get("version") is not None:
        version = ask(client.get_version, job_id, str(rec["version"]))
    if version is not None:
        rewards, slashed = dict(version.get("rewards") or {}), dict(version.get("slashed") or {})
    else:
        rows = (settled if settled is not None else settlements(client, job_id)).get(int(round_), {})
        rewards = {m: r["reward"] for m, r in rows.items() if r["reward"]}
        slashed = {m: r["slash"] for m, r in rows.items() if r["slash"]}
    stakes = {p["msp_id"]: p["stake"] for p in participants}
    votes = {p["msp_id"]: p["vote_metrics"] for p in participants if p["vote"] is not None}
    updates = {p["msp_id"]: p["update_metrics"] for p in participants if p["submitted"]}
    samples = {p["msp_id"]: p["sample_count"] or 0 for p in participants if p["submitted"]}
    agg = rec.get("aggregate") or {}
    raw_tx = dict(rec.get("tx_ids") or {})
    tx_ids = {k: raw_tx[k] for k in sorted(raw_tx, key=lambda k: (STATE_ORDER.index(k) if k in STATE_ORDER
                                                                  else len(STATE_ORDER), k))}
    return {
        "job_id": job_id, "round": int(rec["round"]), "state": rec["state"], "reason": rec.get("reason"),
        "leader": rec.get("leader"), "base_version": rec.get("base_version"), "base_hash": rec.get("base_hash"),
        "version": rec.get("version"), "model_hash": version["model_hash"] if version else None,
        "aggregate_hash": agg.get("aggregate_hash"), "aggregated_by": agg.get("aggregated_by"),
        "privacy": rec.get("privacy"), "quorum": rec.get("quorum"), "stakes": dict(rec.get("stakes") or {}),
        "tally": rec.get("tally"), "times": dict(rec.get("times") or {}), "deadlines": dict(rec.get("deadlines") or {}),
        "dropped": list(rec.get("dropped") or []), "participants": participants,
        "contributors": list(agg.get("contributors") or []),
        "metrics": combine_metrics(votes, stakes), "update_metrics": combine_metrics(updates, samples),
        "rewards": rewards, "slashed": slashed,
        "tx_ids": tx_ids, "blocks": {k: find_block(t) for k, t in tx_ids.items() if isinstance(t, str)},
    }


def org_summary(client: Any, org: str) -> dict:
    """An org's standing and record across all jobs.

    ``org`` is an MSP id (``Org2MSP``) or the org's name (``org2``). Keys: org (its ledger
    record), msp_id, stake, balance, status, rewards (balance earned in round settlements),
    slashed (stake lost in them), rounds (one row per (job, round) it registered for: submitted,
    voted, reward, slash), history (every stake/balance change with before/after, reason, tx) and
    balance_history / stake_history (``[seq, ts, value]`` after each change, from genesis on).
    """
    msp = resolve_org(client, org)
    rep = ask(client.org_report, msp)
    rec = rep["org"]
    history = list(rep.get("history") or [])
    voted = {(v["job_id"], int(v["round"])) for v in rep.get("votes", [])}
    per_round: dict[tuple[str, int], dict] = {}
    for e in history:
        ref = e.get("ref") or {}
        if e.get("reason") == SETTLEMENT and "job_id" in ref:
            row = per_round.setdefault((ref["job_id"], int(ref["round"])), {"reward": 0, "slash": 0})
            if e["field"] == "balance":
                row["reward"] += int(e["delta"])
            else:
                row["slash"] -= int(e["delta"])
    rows = []
    keys = sorted({(p["job_id"], int(p["round"])) for p in rep.get("participation", [])} | voted | set(per_round))
    submitted = {(p["job_id"], int(p["round"])): p["submitted"] for p in rep.get("participation", [])}
    for job_id, r in keys:
        s = per_round.get((job_id, r), {"reward": 0, "slash": 0})
        rows.append({"job_id": job_id, "round": r, "registered": (job_id, r) in submitted,
                     "submitted": bool(submitted.get((job_id, r))), "voted": (job_id, r) in voted,
                     "reward": s["reward"], "slash": s["slash"]})
    series = {"balance": [], "stake": []}
    for e in sorted(history, key=lambda e: e.get("seq", 0)):
        if e.get("field") in series:
            series[e["field"]].append([e.get("seq"), e.get("ts"), e.get("after")])
    return {"msp_id": msp, "org": rec, "name": rec.get("name"), "status": rec.get("status"),
            "stake": rec.get("stake"), "balance": rec.get("balance"),
            "rewards": rep.get("rewards", 0), "slashed": rep.get("slashed", 0),
            "rounds": rows, "history": history,
            "balance_history": series["balance"], "stake_history": series["stake"]}
