"""Audit queries: round report, org report, key history."""
from __future__ import annotations

import json

from fabshim.contract import Context

from . import jobs, roles, rounds, state
from .state import fail

MAX_HISTORY = 1000


def round_report(ctx: Context, job_id: str, r: int) -> dict:
    roles.require_reader(ctx)
    rec = rounds.load(ctx, job_id, r)
    regs, upds, votes, reveals = (state.by_org(ctx, t, job_id, r)
                                  for t in (state.REG, state.UPD, state.VOTE, state.REVEAL))
    participants = {}
    for m in sorted(set(regs) | set(upds) | set(votes) | set(rec["stakes"])):
        u = upds.get(m)
        participants[m] = {
            "stake": rec["stakes"].get(m, 0),
            "registered_at": regs[m]["registered_at"] if m in regs else None,
            "register_tx": regs[m]["tx_id"] if m in regs else None,
            "public_key": regs[m]["public_key"] if m in regs else None,
            "update": None if u is None else {k: u[k] for k in ("sha256", "size", "sample_count", "submitted_at",
                                                                 "tx_id", "training", "metrics")},
            "vote": None if m not in votes else {k: votes[m][k] for k in ("approve", "model_hash", "metrics",
                                                                          "voted_at", "tx_id")},
            "revealed_for": reveals[m]["dropped"] if m in reveals else [],
        }
    return {"round": rec, "participants": participants,
            "note": "block numbers: look up the tx ids with qscc GetBlockByTxID"}


def org_report(ctx: Context, msp_id: str) -> dict:
    roles.require_reader(ctx)
    org = state.must_get(ctx, state.key(ctx, state.ORG, msp_id), f"org {msp_id}")
    entries = [e for _, e in state.scan(ctx, state.LEDGER, msp_id)]
    registered = [(a[0], int(a[1])) for a, _ in state.scan(ctx, state.REG) if a[-1] == msp_id]
    submitted = {(a[0], int(a[1])) for a, _ in state.scan(ctx, state.UPD) if a[-1] == msp_id}
    votes = [(a[0], int(a[1])) for a, _ in state.scan(ctx, state.VOTE) if a[-1] == msp_id]
    return {"org": org,
            "participation": [{"job_id": j, "round": r, "submitted": (j, r) in submitted} for j, r in registered],
            "votes": [{"job_id": j, "round": r} for j, r in votes],
            "rewards": sum(e["delta"] for e in entries if e["field"] == "balance" and e["reason"] == "round-settlement"),
            "slashed": -sum(e["delta"] for e in entries if e["field"] == "stake" and e["reason"] == "round-settlement"),
            "history": entries}


def key_history(ctx: Context, object_type: str, attrs: list) -> list:
    """Every committed value of one ledger key, newest first."""
    roles.require_reader(ctx)
    if object_type not in state.KEY_TYPES:
        raise fail(f"unknown object type '{object_type}' (one of {', '.join(state.KEY_TYPES)})")
    if not isinstance(attrs, list) or not all(isinstance(a, (str, int)) and not isinstance(a, bool) for a in attrs):
        raise fail("attrs must be a JSON list of strings")
    k = state.key(ctx, object_type, *attrs)
    out = []
    with ctx.stub.get_history_for_key(k) as it:
        for km in it:
            out.append({"tx_id": km.tx_id, "timestamp": int(km.timestamp.seconds), "is_delete": km.is_delete,
                        "value": None if km.is_delete else json.loads(km.value)})
            if len(out) >= MAX_HISTORY:
                break
    return out


def job_rounds(ctx: Context, job_id: str) -> list:
    roles.require_reader(ctx)
    jobs.load(ctx, job_id)
    return [{k: v for k, v in rec.items() if k in ("round", "state", "leader", "times", "version", "reason")}
            for _, rec in state.scan(ctx, state.ROUND, job_id)]
