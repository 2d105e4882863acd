"""Ledger helpers: canonical JSON, composite keys, point reads of per-org records, the one event per tx.

Reads see committed state only (Fabric has no read-your-writes): every transaction reads and
validates first, then writes. Transactions of one round phase read other orgs' records by point
(never by range), so concurrent transactions of that phase never invalidate each other.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Optional

from fabshim.contract import ChaincodeError, Context
from fedfabric_protocol.records import canonical

# private collection of the member orgs (defined by the deployment: app/fedfabric/network/deploy.py)
UPDATES_COLLECTION = "fedfabricUpdates"        # update payloads and pairwise seeds; purged when the round closes

# composite key object types
ORG, CONSORTIUM, POLICY, LEDGER, STAKE_PROPOSAL, STATUS_PROPOSAL, MEMBERSHIP_PROPOSAL = (
    "org", "consortium", "policy", "ledger", "stakeprop", "statusprop", "memberprop")
JOB, ROUND, REG, UPD, SEED, REVEAL, VOTE, VERSION, ALIAS = (
    "job", "round", "reg", "upd", "seed", "reveal", "vote", "version", "alias")
KEY_TYPES = (ORG, CONSORTIUM, POLICY, LEDGER, STAKE_PROPOSAL, STATUS_PROPOSAL, MEMBERSHIP_PROPOSAL, JOB, ROUND, REG,
             UPD, REVEAL, VOTE, VERSION, ALIAS)

dumps = canonical


def fail(msg: str, status: int = 400) -> ChaincodeError:
    return ChaincodeError(msg, status)


def key(ctx: Context, object_type: str, *attrs: Any) -> str:
    return ctx.stub.create_composite_key(object_type, [str(a) for a in attrs])


def rnd(r: int) -> str:
    """Round / version numbers zero-padded so keys sort numerically."""
    return f"{int(r):06d}"


def get(ctx: Context, k: str) -> Optional[dict]:
    raw = ctx.stub.get_state(k)
    return None if raw is None else json.loads(raw)


def must_get(ctx: Context, k: str, what: str) -> dict:
    v = get(ctx, k)
    if v is None:
        raise fail(f"{what} not found", 404)
    return v


def put(ctx: Context, k: str, obj: Any) -> None:
    ctx.stub.put_state(k, dumps(obj))


def scan(ctx: Context, object_type: str, *attrs: Any) -> Iterator[tuple[list[str], dict]]:
    """(attributes, record) for every key under a partial composite key, in key order (queries and
    governance only: a range read in a round phase would conflict with that phase's writes)."""
    with ctx.stub.get_state_by_partial_composite_key(object_type, [str(a) for a in attrs]) as it:
        rows = list(it)
    for k, v in rows:
        yield ctx.stub.split_composite_key(k)[1], json.loads(v)


def round_key(ctx: Context, object_type: str, job_id: str, r: int, msp: str) -> str:
    """Key of one org's record of one round (registration, update, reveal, vote)."""
    return key(ctx, object_type, job_id, rnd(r), msp)


def per_org(ctx: Context, object_type: str, job_id: str, r: int, msps: Iterable[str]) -> dict[str, dict]:
    """The round records of type ``object_type`` of the orgs ``msps``, read by point (absent ones left out)."""
    out = {}
    for m in sorted(set(msps)):
        v = get(ctx, round_key(ctx, object_type, job_id, r, m))
        if v is not None:
            out[m] = v
    return out


def now(ctx: Context) -> int:
    """Transaction time in whole seconds (bounded by the endorser's clock: ``clock.SkewGate``)."""
    return int(ctx.stub.get_tx_timestamp().seconds)


def emit(ctx: Context, name: str, payload: dict) -> None:
    """The transaction's single chaincode event (name + canonical JSON payload)."""
    body = dict(payload)
    body["tx_id"] = ctx.stub.tx_id
    ctx.stub.set_event(name, dumps(body))
