"""Submissions: an update's public record and private bytes, survivors' seed reveals, and the reads nodes
use to compute a round's aggregate themselves.

Where the job's payloads travel in the private collection (``Exchange.ENDORSED``), the bytes come in
the transient map and are checked here (length, hash, range); the collection pushes nothing during
endorsement (``maxPeerCount`` 0): other peers pull the bytes when the block commits. Where they
travel node to node (``Exchange.NODES``) only the record is written, with the endpoint the org's
node serves the bytes from.
"""
from __future__ import annotations

import hashlib
import json

from fabshim.contract import Context
from fedfabric_protocol import codec, deadlines
from fedfabric_protocol.deadlines import Activity
from fedfabric_protocol.fields import HEX64, ident, matches
from fedfabric_protocol.records import UpdateMeta
from fedfabric_protocol.spec import MSP_RE
from fedfabric_protocol.states import Exchange, Privacy, Transient

from . import jobs, roles, rounds, state
from .state import UPDATES_COLLECTION, fail

TRANSIENT_UPDATE = Transient.UPDATE.value
TRANSIENT_SEEDS = Transient.SEEDS.value


def upd_key(ctx: Context, job_id: str, r: int, msp: str) -> str:
    return state.round_key(ctx, state.UPD, job_id, r, msp)


def seed_key(ctx: Context, job_id: str, r: int, survivor: str, dropped: str) -> str:
    return state.key(ctx, state.SEED, job_id, state.rnd(r), survivor, dropped)


def reveals_of(records: dict[str, dict]) -> dict[str, frozenset]:
    """Reveal records (MSP id -> record) as the set of orgs each survivor revealed seeds for."""
    return {m: frozenset(v["left_out"]) for m, v in records.items()}


def submit_update(ctx: Context, job_id: str, r: int, meta: dict) -> dict:
    """A participant's update for round ``r``: public record (hash, size, samples, training facts) and,
    for endorsed jobs, the bytes (transient ``update``) into the private collection."""
    job = jobs.load(ctx, job_id)
    spec = jobs.spec_of(job)
    msp = roles.require_participant(ctx, "submit_update", list(spec.participants), job_id)["msp_id"]
    rec = rounds.load_current(ctx, job, r)
    k = upd_key(ctx, job_id, r, msp)
    mine = state.get(ctx, k) is not None
    others = state.per_org(ctx, state.REVEAL, job_id, r, [p for p in rec.participants if p != msp])
    t = state.now(ctx)
    deadlines.check_submit(rec, msp, Activity(submitted=frozenset({msp} if mine else ()),
                                              reveals=reveals_of(others)), t)
    m = UpdateMeta.from_dict(meta)
    if m.shape_digest != spec.model.shape_digest:
        raise fail(f"wrong shape: shape digest {m.shape_digest} differs from the job's {spec.model.shape_digest}")
    if m.size != spec.model.num_params * codec.WORD_BYTES:
        raise fail(f"wrong length: meta.size={m.size}, the job's model has {spec.model.num_params} parameters "
                   f"({spec.model.num_params * codec.WORD_BYTES} bytes)")
    if spec.dp.enabled and m.dp_epsilon_milli is None:
        raise fail("meta.dp_epsilon_milli is required: the job has DP enabled")
    payload = ctx.stub.get_transient().get(TRANSIENT_UPDATE)
    if rec.exchange is Exchange.ENDORSED:
        if payload is None:
            raise fail(f"the update payload must be in the transient map under '{TRANSIENT_UPDATE}'")
        words = codec.unpack(payload, spec.model.num_params)
        digest = hashlib.sha256(payload).hexdigest()
        if digest != m.sha256:
            raise fail(f"hash mismatch: the payload hashes to {digest}, meta.sha256 is {m.sha256}")
        if spec.privacy is Privacy.CLEAR:
            codec.check_range(words, spec.max_abs)
        ctx.stub.put_private_data(UPDATES_COLLECTION, k, payload)
    else:
        if payload is not None:
            raise fail(f"job {job_id} has {spec.model.num_params} parameters (> endorsed_max_params "
                       f"{spec.endorsed_max_params}): payloads travel node to node, not in the transaction")
        if m.endpoint is None:
            raise fail("meta.endpoint (host:port of this org's node) is required: payloads travel node to node")
    out = {**m.to_dict(), "job_id": job_id, "round": r, "msp_id": msp, "submitted_at": t, "tx_id": ctx.stub.tx_id,
           "client_id": ctx.client_identity.id}
    state.put(ctx, k, out)
    state.emit(ctx, "UpdateSubmitted", {"job_id": job_id, "round": r, "msp_id": msp, "sha256": m.sha256,
                                        "sample_count": m.sample_count, "size": m.size, "endpoint": m.endpoint})
    return out


def reveal_seeds(ctx: Context, job_id: str, r: int, left_out: list) -> dict:
    """A survivor reveals its pairwise seeds with the participants left out of the aggregate (transient
    ``seeds``: JSON ``{msp: hex}``), so the masks it added against them can be removed."""
    job = jobs.load(ctx, job_id)
    spec = jobs.spec_of(job)
    msp = roles.require_participant(ctx, "reveal_seeds", list(spec.participants), job_id)["msp_id"]
    rec = rounds.load_current(ctx, job, r)
    if not isinstance(left_out, list) or not all(matches(MSP_RE, x) for x in left_out) or len(left_out) > 256:
        raise fail("left_out must be a JSON list of MSP ids")
    upds = state.per_org(ctx, state.UPD, job_id, r, rec.participants)
    rk = state.round_key(ctx, state.REVEAL, job_id, r, msp)
    mine = state.get(ctx, rk)
    t = state.now(ctx)
    deadlines.check_reveal(rec, msp, frozenset(left_out), Activity(submitted=frozenset(upds),
                                                                   reveals={msp: frozenset()} if mine else {}), t)
    raw = ctx.stub.get_transient().get(TRANSIENT_SEEDS)
    if raw is None:
        raise fail(f"the seeds must be in the transient map under '{TRANSIENT_SEEDS}' as JSON {{msp: hex}}")
    try:
        seeds = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise fail("transient 'seeds' is not valid JSON") from None
    if not isinstance(seeds, dict) or sorted(seeds) != sorted(set(left_out)):
        raise fail(f"transient 'seeds' must cover exactly {', '.join(sorted(set(left_out)))}")
    for d, s in seeds.items():
        if not matches(HEX64, s):
            raise fail(f"seed for {d} must be 32 bytes as 64 lowercase hex characters")
    ordered = sorted(set(left_out))
    hashes = {d: hashlib.sha256(bytes.fromhex(seeds[d])).hexdigest() for d in ordered}
    for d in ordered:
        ctx.stub.put_private_data(UPDATES_COLLECTION, seed_key(ctx, job_id, r, msp, d), bytes.fromhex(seeds[d]))
    out = {"job_id": job_id, "round": r, "msp_id": msp, "left_out": ordered, "seed_hashes": hashes,
           "revealed_at": t, "tx_id": ctx.stub.tx_id}
    state.put(ctx, rk, out)
    state.emit(ctx, "SeedsRevealed", {"job_id": job_id, "round": r, "msp_id": msp, "left_out": ordered})
    return out


def _private(ctx: Context, k: str, want_sha: str, what: str) -> bytes:
    data = ctx.stub.get_private_data(UPDATES_COLLECTION, k)
    if data is None:
        raise fail(f"{what} is not available on this peer (yet)", 503)
    if hashlib.sha256(data).hexdigest() != want_sha:
        raise fail(f"hash mismatch: {what} on this peer does not match its recorded SHA-256", 500)
    return data


def update_bytes(ctx: Context, job_id: str, r: int, msp: str, meta: dict) -> bytes:
    return _private(ctx, upd_key(ctx, job_id, r, msp), meta["sha256"], f"the update of {msp} in round {r}")


def seed_bytes(ctx: Context, job_id: str, r: int, survivor: str, dropped: str, reveal: dict) -> bytes:
    return _private(ctx, seed_key(ctx, job_id, r, survivor, dropped), reveal["seed_hashes"][dropped],
                    f"the seed {survivor} revealed for {dropped} in round {r}")


def _participant_read(ctx: Context, job_id: str, tx: str) -> dict:
    job = jobs.load(ctx, job_id)
    roles.require_participant(ctx, tx, list(job["spec"]["participants"]), job_id)
    return job


def get_update(ctx: Context, job_id: str, r: int, msp: str) -> bytes:
    """The bytes of ``msp``'s update in round ``r`` (masked in secure mode), hash-checked; participants only."""
    _participant_read(ctx, job_id, "get_update")
    rounds.load(ctx, job_id, r)
    meta = state.must_get(ctx, upd_key(ctx, job_id, r, ident(msp, "msp_id", MSP_RE)), f"update of {msp} in round {r}")
    return update_bytes(ctx, job_id, r, msp, meta)


def get_revealed_seeds(ctx: Context, job_id: str, r: int, survivor: str) -> dict:
    """The seeds ``survivor`` revealed in round ``r`` (``{left-out msp: hex}``), hash-checked; participants only."""
    _participant_read(ctx, job_id, "get_revealed_seeds")
    rounds.load(ctx, job_id, r)
    rev = state.must_get(ctx, state.round_key(ctx, state.REVEAL, job_id, r, ident(survivor, "msp_id", MSP_RE)),
                         f"seed reveal of {survivor} in round {r}")
    return {d: seed_bytes(ctx, job_id, r, survivor, d, rev).hex() for d in rev["left_out"]}
