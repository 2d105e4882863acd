"""Audit queries: a round with every org's records, an org's participation, a key's history, a job's rounds."""
from __future__ import annotations

import json

from fabshim.contract import Context
from fedfabric_protocol.errors import show
from fedfabric_protocol.fields import ID_RE, ident, matches
from fedfabric_protocol.spec import MSP_RE

from . import jobs, roles, rounds, state
from .state import fail

MAX_HISTORY = 1000
UPDATE_FIELDS = ("sha256", "size", "sample_count", "submitted_at", "tx_id", "training", "metrics", "dp_epsilon_milli",
                 "endpoint")
VOTE_FIELDS = ("approve", "aggregate_hash", "model_hash", "contributors", "flagged", "result_key", "metrics",
               "voted_at", "tx_id", "next_public_key")


def round_report(ctx: Context, job_id: str, r: int) -> dict:
    """Round ``r`` and, per org of its electorate, its round key, update, seed reveal, ballot and next-round key
    (every record with its transaction id). Nodes resynchronise from this one read."""
    roles.require_reader(ctx)
    rec = rounds.load(ctx, ident(job_id, "job_id"), r)
    orgs = sorted(set(rec.electorate) | set(rec.participants))
    regs, upds, reveals, votes, nexts = (state.per_org(ctx, t, job_id, rr, orgs) for t, rr in
                                         ((state.REG, r), (state.UPD, r), (state.REVEAL, r), (state.VOTE, r),
                                          (state.REG, r + 1)))
    participants = {}
    for m in orgs:
        u, v = upds.get(m), votes.get(m)
        participants[m] = {
            "stake": rec.stakes.get(m, 0), "participant": m in rec.participants,
            "public_key": rec.public_keys.get(m) or (regs[m]["public_key"] if m in regs else None),
            "register_tx": regs[m]["tx_id"] if m in regs else None,
            "registered_via": regs[m].get("via") if m in regs else None,
            "update": None if u is None else {k: u[k] for k in UPDATE_FIELDS if k in u},
            "revealed_for": reveals[m]["left_out"] if m in reveals else [],
            "reveal_tx": reveals[m]["tx_id"] if m in reveals else None,
            "revealed_at": reveals[m]["revealed_at"] if m in reveals else None,
            "vote": None if v is None else {k: v[k] for k in VOTE_FIELDS if k in v},
            "next_round_key": nexts[m]["public_key"] if m in nexts else None,
        }
    return {"round": rec.to_dict(), "participants": participants,
            "note": "block numbers: look up the tx ids with qscc GetBlockByTxID"}


def org_report(ctx: Context, msp_id: str) -> dict:
    """An org's record, stake and balance history, the rounds it took part in and its ballots."""
    roles.require_reader(ctx)
    org = state.must_get(ctx, state.key(ctx, state.ORG, ident(msp_id, "msp_id", MSP_RE)), f"org {msp_id}")
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
        raise fail(f"unknown object type {show(object_type, 64)} (one of {', '.join(state.KEY_TYPES)})")
    if not isinstance(attrs, list) or len(attrs) > 8 or not all(
            (isinstance(a, int) and not isinstance(a, bool) and 0 <= a < 10**12) or matches(ID_RE, a) for a in attrs):
        raise fail(f"attrs must be a JSON list of at most 8 ids (each matching {ID_RE.pattern}) or numbers")
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
    """A job's rounds: state, leader, participants, deadlines, outcome summary."""
    roles.require_reader(ctx)
    jobs.load(ctx, job_id)
    out = []
    for _, rec in state.scan(ctx, state.ROUND, job_id):
        o = rec.get("outcome") or {}
        out.append({"round": rec["round"], "state": rec["state"], "leader": rec["leader"],
                    "participants": rec["participants"], "opened_at": rec["opened_at"],
                    "started_at": rec["started_at"], "closed_at": o.get("closed_at"), "version": o.get("version"),
                    "reason": o.get("reason")})
    return out
