"""Round and org summaries: who took part, what they sent, how they voted, what they earned or lost."""
from __future__ import annotations

import time
from typing import Any, Callable

from fedfabric_protocol import deadlines
from fedfabric_protocol.deadlines import Activity
from fedfabric_protocol.records import RoundRecord

from .common import ask, block_finder, combine_metrics, resolve_org

SETTLEMENT = "round-settlement"
TIMELINE_STEPS = ("opened", "started", "updates", "reveals", "votes", "finalize")


def _activity(rec: RoundRecord, parts: dict[str, dict]) -> Activity:
    """What the round's per-org records say happened (the protocol's view, for its phase)."""
    return Activity(registered=frozenset(m for m, p in parts.items() if p.get("register_tx")),
                    submitted=frozenset(m for m, p in parts.items() if p.get("update") is not None),
                    reveals={m: frozenset(p["revealed_for"]) for m, p in parts.items() if p.get("reveal_tx")},
                    voted=frozenset(m for m, p in parts.items() if p.get("vote") is not None))


def _participant(msp: str, p: dict, outcome: dict) -> dict:
    u, v = p.get("update"), p.get("vote")
    settlement = outcome.get("settlement") or {}
    return {
        "msp_id": msp, "stake": p.get("stake", 0), "participant": bool(p.get("participant")),
        "registered": p.get("register_tx") is not None, "register_tx": p.get("register_tx"),
        "submitted": u is not None, "sample_count": u["sample_count"] if u else None,
        "update_hash": u["sha256"] if u else None, "update_size": u["size"] if u else None,
        "update_tx": u["tx_id"] if u else None, "submitted_at": u.get("submitted_at") if u else None,
        "update_metrics": dict(u.get("metrics") or {}) if u else {}, "training": dict(u.get("training") or {}) if u else {},
        "dp_epsilon_milli": u.get("dp_epsilon_milli") if u else None,
        "revealed_for": list(p.get("revealed_for") or []), "reveal_tx": p.get("reveal_tx"),
        "vote": None if v is None else ("approve" if v["approve"] else "reject"),
        "vote_result_key": v.get("result_key") if v else None, "vote_model_hash": v.get("model_hash") if v else None,
        "vote_aggregate_hash": v.get("aggregate_hash") if v else None,
        "vote_contributors": list(v.get("contributors") or []) if v else [],
        "vote_metrics": dict(v.get("metrics") or {}) if v else {}, "vote_tx": v.get("tx_id") if v else None,
        "voted_at": v.get("voted_at") if v else None, "next_round_key": p.get("next_round_key") is not None,
        "left_out": msp in (outcome.get("left_out") or []), "flagged": msp in (outcome.get("flagged") or []),
        "no_reveal": msp in (outcome.get("no_reveal") or []),
        "reward": int((settlement.get("rewards") or {}).get(msp, 0)),
        "slashed": int((settlement.get("slashed") or {}).get(msp, 0)),
        "owed": int((settlement.get("owed") or {}).get(msp, 0)),
    }


def _timeline(rec: RoundRecord, rows: list[dict], find_block: Callable[[str], int | None]) -> list[dict]:
    """The round's transactions in protocol order (opened, started, updates, reveals, votes, finalize);
    the orgs' transactions within a step in block order where blocks are known, else by time."""
    outcome = rec.outcome or {}
    steps: list[tuple[str, str | None, str, Any]] = [("opened", None, rec.opened_tx, rec.opened_at),
                                                     ("started", None, rec.started_tx, rec.started_at or None)]
    for step, tx, at in (("updates", "update_tx", "submitted_at"), ("reveals", "reveal_tx", None),
                         ("votes", "vote_tx", "voted_at")):
        steps += [(step, p["msp_id"], p[tx], p.get(at) if at else None) for p in rows]
    steps.append(("finalize", outcome.get("closed_by"), outcome.get("closed_tx"), outcome.get("closed_at")))
    out = [{"step": s, "msp_id": m, "tx_id": tx, "time": at, "block": find_block(tx)} for s, m, tx, at in steps if tx]
    late = float("inf")
    return sorted(out, key=lambda e: (TIMELINE_STEPS.index(e["step"]), late if e["block"] is None else e["block"],
                                      e["time"] or late, e["msp_id"] or ""))


def round_summary(client: Any, job_id: str, round_: int, *,
                  blocks: bool | Callable[[str], int | None] = True) -> dict:
    """One round of a job as the ledger recorded it (its record, outcome and every org's records).

    Keys: job_id, round, state (the protocol's round state), phase (where an open round stands now,
    by the protocol's own deadline rules; ``closed`` once it closed), closed, reason, leader,
    base_version, base_hash, version, model_hash, aggregate (the outcome's aggregate: hash,
    recomputed, rule, DP epsilon, distances, leave-one-out) and aggregate_hash, closed_by, privacy,
    exchange, quorum, stakes, tally, deadlines, times (opened, started, closed), submitted, voted,
    contributors (msp_id, sample_count, update_hash, update_tx), left_out, flagged, no_reveal,
    participants (one row per org of the electorate: stake, registered, submitted, sample count,
    update hash and metrics, seed reveals, vote, voted result and metrics, left out, flagged,
    reward, slashed), metrics (votes' metrics combined, stake-weighted), update_metrics (weighted by
    samples), rewards, slashed and timeline (``step`` opened, started, updates, reveals, votes,
    finalize; ``msp_id``, ``tx_id``, ``time`` and ``block``). ``blocks``: False for no block
    look-ups, or a ``tx_id -> block`` function to share one cache. Unknown job or round:
    :class:`BadInput`.
    """
    rep = ask(client.round_report, job_id, int(round_))
    rec = RoundRecord.from_dict(rep["round"])
    parts = rep["participants"]
    outcome = dict(rec.outcome or {})
    find_block = blocks if callable(blocks) else block_finder(client) if blocks else (lambda tx: None)
    rows = [_participant(m, p, outcome) for m, p in sorted(parts.items())]
    by_msp = {p["msp_id"]: p for p in rows}
    phase = deadlines.phase(rec, _activity(rec, parts), int(time.time()))
    contributors = [{"msp_id": m, "sample_count": by_msp[m]["sample_count"] if m in by_msp else None,
                     "update_hash": by_msp[m]["update_hash"] if m in by_msp else None,
                     "update_tx": by_msp[m]["update_tx"] if m in by_msp else None}
                    for m in outcome.get("contributors") or []]
    settlement = outcome.get("settlement") or {}
    agg = outcome.get("aggregate")
    stakes = {p["msp_id"]: p["stake"] for p in rows}
    return {
        "job_id": job_id, "round": rec.round, "state": rec.state.value, "phase": phase.value,
        "closed": rec.state.closed, "reason": outcome.get("reason"), "leader": rec.leader,
        "base_version": rec.base_version, "base_hash": rec.base_hash, "version": outcome.get("version"),
        "model_hash": outcome.get("model_hash"), "aggregate": agg,
        "aggregate_hash": (agg or {}).get("aggregate_hash"), "closed_by": outcome.get("closed_by"),
        "privacy": rec.privacy.value, "exchange": rec.exchange.value, "quorum": list(rec.quorum),
        "stakes": dict(rec.stakes), "tally": outcome.get("tally"), "deadlines": rec.deadlines.to_dict(),
        "times": {"opened": rec.opened_at, "started": rec.started_at or None, "closed": outcome.get("closed_at")},
        "submitted": list(outcome.get("submitted") or []),
        "voted": list(outcome.get("voted") or []), "contributors": contributors,
        "left_out": list(outcome.get("left_out") or []), "flagged": list(outcome.get("flagged") or []),
        "no_reveal": list(outcome.get("no_reveal") or []), "participants": rows,
        "metrics": combine_metrics({p["msp_id"]: p["vote_metrics"] for p in rows if p["vote"] is not None}, stakes),
        "update_metrics": combine_metrics({p["msp_id"]: p["update_metrics"] for p in rows if p["submitted"]},
                                          {p["msp_id"]: p["sample_count"] or 0 for p in rows if p["submitted"]}),
        "rewards": {m: int(v) for m, v in sorted((settlement.get("rewards") or {}).items())},
        "slashed": {m: int(v) for m, v in sorted((settlement.get("slashed") or {}).items())},
        "owed": {m: int(v) for m, v in sorted((settlement.get("owed") or {}).items())},
        "slash_deferred": settlement.get("slash_deferred"),
        "timeline": _timeline(rec, rows, find_block),
    }


def org_summary(client: Any, org: str) -> dict:
    """An org's standing and record across all jobs.

    ``org`` is an MSP id (``Org2MSP``) or the org's name (``org2``). Keys: org (its ledger
    record), msp_id, stake, balance, status, rewards (balance earned in round settlements),
    slashed (stake lost in them), slash_owed (stake it still owes to slashing), rounds (one row per
    (job, round) it registered for: submitted, voted, reward, slash), history (every change of stake,
    balance, status and slashing debt with before/after, reason, tx) and
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
            elif e["field"] == "stake":
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
            "slash_owed": int(rec.get("slash_owed", 0)), "rounds": rows, "history": history,
            "balance_history": series["balance"], "stake_history": series["stake"]}
