"""Ledger helpers: canonical JSON, composite keys, reads, transaction time, the one event per tx.

Reads see committed state only (Fabric has no read-your-writes): every transaction reads and
validates first, then writes.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Optional

from fabshim.contract import ChaincodeError, Context

# private collections of the member orgs (defined by the deployment: app/fedfabric/network/deploy.py)
UPDATES_COLLECTION = "fedfabricUpdates"        # update payloads and pairwise seeds; purged after blockToLive
AGGREGATES_COLLECTION = "fedfabricAggregates"  # round aggregates; never purged

# composite key object types
ORG, CONSORTIUM, POLICY, LEDGER, STAKE_PROPOSAL, STATUS_PROPOSAL = (
    "org", "consortium", "policy", "ledger", "stakeprop", "statusprop")
JOB, ROUND, REG, UPD, SEED, REVEAL, AGG, VOTE, VERSION, ALIAS = (
    "job", "round", "reg", "upd", "seed", "reveal", "agg", "vote", "version", "alias")
KEY_TYPES = (ORG, CONSORTIUM, POLICY, LEDGER, STAKE_PROPOSAL, STATUS_PROPOSAL, JOB, ROUND, REG, UPD, REVEAL, VOTE, VERSION, ALIAS)


def dumps(obj: Any) -> bytes:
    """Canonical JSON (sorted keys, compact) for everything written to the ledger."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


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
    """(attributes, record) for every key under a partial composite key, in key order."""
    with ctx.stub.get_state_by_partial_composite_key(object_type, [str(a) for a in attrs]) as it:
        rows = list(it)
    for k, v in rows:
        yield ctx.stub.split_composite_key(k)[1], json.loads(v)


def by_org(ctx: Context, object_type: str, job_id: str, r: int) -> dict[str, dict]:
    """A round's records of one type (registrations, updates, reveals, votes), keyed by the org's MSP id
    (the last key attribute)."""
    return {attrs[-1]: rec for attrs, rec in scan(ctx, object_type, job_id, rnd(r))}


def now(ctx: Context) -> int:
    """Transaction time in whole seconds (the only clock the chaincode has)."""
    return int(ctx.stub.get_tx_timestamp().seconds)


def emit(ctx: Context, name: str, payload: dict) -> None:
    """The transaction's single chaincode event (name + canonical JSON payload)."""
    body = dict(payload)
    body["tx_id"] = ctx.stub.tx_id
    ctx.stub.set_event(name, dumps(body))
