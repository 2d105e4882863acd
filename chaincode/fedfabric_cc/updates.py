"""Update submission (payload via the transient map into the private collection) and seed reveals."""
from __future__ import annotations

import hashlib
import json
import re

from fabshim.contract import Context

from . import codec, jobs, roles, rounds, spec as specmod, state
from .state import UPDATES_COLLECTION, fail

TRANSIENT_UPDATE = "update"
TRANSIENT_SEEDS = "seeds"
META_FIELDS = {"sha256", "size", "shape_digest", "sample_count", "dtype", "training", "metrics", "dp_epsilon_milli"}
TRAINING_FIELDS = {"start", "end", "epochs", "iterations", "loss_per_epoch", "data_fingerprint"}
SEED_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_SAMPLES = (1 << 31) - 1


def upd_key(ctx: Context, job_id: str, r: int, msp: str) -> str:
    return state.key(ctx, state.UPD, job_id, state.rnd(r), msp)


def seed_key(ctx: Context, job_id: str, r: int, survivor: str, dropped: str) -> str:
    return state.key(ctx, state.SEED, job_id, state.rnd(r), survivor, dropped)


def _metrics(m: object, path: str) -> dict:
    if not isinstance(m, dict) or len(m) > 64:
        raise fail(f"{path} must be an object of at most 64 entries")
    for k, v in m.items():
        if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and len(v) > 128):
            raise fail(f"{path}.{k} must be an integer (e.g. milli-units) or a short string")
    return m


def _training(t: object, opened_at: int) -> dict:
    if not isinstance(t, dict):
        raise fail("meta.training must be an object")
    extra = set(t) - TRAINING_FIELDS
    if extra:
        raise fail(f"meta.training: unknown field(s) {', '.join(sorted(extra))}")
    start = specmod.integer(t, "start", "meta.training", 0, 1 << 40)
    end = specmod.integer(t, "end", "meta.training", start, 1 << 40)
    epochs = specmod.integer(t, "epochs", "meta.training", 1, 100_000)
    iters = specmod.integer(t, "iterations", "meta.training", 1, 1 << 40)
    loss = t.get("loss_per_epoch")
    if not isinstance(loss, list) or len(loss) != epochs or any(
            isinstance(x, bool) or not isinstance(x, int) for x in loss):
        raise fail(f"meta.training.loss_per_epoch must be {epochs} integers (loss in micro-units, one per epoch)")
    return {"start": start, "end": end, "epochs": epochs, "iterations": iters, "loss_per_epoch": loss,
            "data_fingerprint": specmod.hex64(t, "data_fingerprint", "meta.training")}


def validate_meta(meta: object, job: dict, opened_at: int) -> dict:
    if not isinstance(meta, dict):
        raise fail("meta must be a JSON object")
    extra = set(meta) - META_FIELDS
    if extra:
        raise fail(f"meta: unknown field(s) {', '.join(sorted(extra))}")
    specmod.no_floats(meta, "meta")
    if meta.get("dtype", codec.DTYPE) != codec.DTYPE:
        raise fail(f"wrong dtype: meta.dtype is {meta.get('dtype')!r}, expected {codec.DTYPE}")
    out = {"sha256": specmod.hex64(meta, "sha256", "meta"),
           "size": specmod.integer(meta, "size", "meta", 0, 1 << 40),
           "shape_digest": specmod.hex64(meta, "shape_digest", "meta"),
           "sample_count": specmod.integer(meta, "sample_count", "meta", 1, MAX_SAMPLES),
           "dtype": codec.DTYPE, "training": _training(meta.get("training"), opened_at),
           "metrics": _metrics(meta.get("metrics", {}), "meta.metrics")}
    if "dp_epsilon_milli" in meta:
        out["dp_epsilon_milli"] = specmod.integer(meta, "dp_epsilon_milli", "meta", 0, 10**12)
    elif job["spec"]["dp"]["enabled"]:
        raise fail("meta.dp_epsilon_milli is required: the job has DP enabled")
    return out


def submit_update(ctx: Context, job_id: str, r: int, meta: dict) -> dict:
    org, _ = roles.require_writer(ctx, "submit_update", rounds.PARTICIPANT_ROLES)
    msp = org["msp_id"]
    job = jobs.load(ctx, job_id)
    if r != job["current_round"]:
        raise fail(f"wrong round: job {job_id} is at round {job['current_round']}, not {r}", 409)
    rec = rounds.load(ctx, job_id, r)
    if rec["state"] != rounds.COLLECTING:
        raise fail(f"wrong state: round {r} of job {job_id} is {rec['state']}, not collecting", 409)
    t = state.now(ctx)
    if t > rec["deadlines"]["submission"]:
        raise fail(f"too late: the submission window of round {r} closed at {rec['deadlines']['submission']} (now {t})", 409)
    if msp not in rec["participants"]:
        raise fail(f"{msp} is not registered for round {r} of job {job_id}", 403)
    k = upd_key(ctx, job_id, r, msp)
    if state.get(ctx, k) is not None:
        raise fail(f"duplicate: {msp} already submitted an update for round {r} of job {job_id}", 409)
    payload = ctx.stub.get_transient().get(TRANSIENT_UPDATE)
    if payload is None:
        raise fail(f"the update payload must be in the transient map under '{TRANSIENT_UPDATE}'")
    m = validate_meta(meta, job, rec["times"][rounds.OPEN])
    model = job["spec"]["model"]
    try:
        words = codec.unpack(payload, model["num_params"])
    except codec.CodecError as exc:
        raise fail(str(exc)) from None
    if m["size"] != len(payload):
        raise fail(f"size mismatch: meta.size={m['size']} but the payload has {len(payload)} bytes")
    if m["shape_digest"] != model["shape_digest"]:
        raise fail(f"wrong shape: shape digest {m['shape_digest']} differs from the job's {model['shape_digest']}")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != m["sha256"]:
        raise fail(f"hash mismatch: the payload hashes to {digest}, meta.sha256 is {m['sha256']}")
    if job["spec"]["privacy"] == "clear":
        try:
            codec.check_range(words, job["spec"]["max_abs"])
        except codec.CodecError as exc:
            raise fail(str(exc)) from None
    rec_out = {**m, "job_id": job_id, "round": r, "msp_id": msp, "submitted_at": t, "tx_id": ctx.stub.tx_id,
               "client_id": ctx.client_identity.id}
    ctx.stub.put_private_data(UPDATES_COLLECTION, k, payload)
    state.put(ctx, k, rec_out)
    state.emit(ctx, "UpdateSubmitted", {"job_id": job_id, "round": r, "msp_id": msp, "sha256": m["sha256"],
                                        "sample_count": m["sample_count"]})
    return rec_out


def reveal_seeds(ctx: Context, job_id: str, r: int) -> dict:
    """A survivor reveals its pairwise seeds with every dropped participant (after the window)."""
    org, _ = roles.require_writer(ctx, "reveal_seeds", rounds.PARTICIPANT_ROLES)
    msp = org["msp_id"]
    rec = rounds.load(ctx, job_id, r)
    rounds.expect(rec, rounds.COLLECTING)
    if rec["privacy"] != "secure":
        raise fail("seed reveals exist only in secure mode", 409)
    t = state.now(ctx)
    if t <= rec["deadlines"]["submission"]:
        raise fail(f"the submission window is open until {rec['deadlines']['submission']}; reveal after it closes", 409)
    if t > rounds.reveal_deadline(rec):
        raise fail(f"too late: the seed-reveal window of round {r} closed at {rounds.reveal_deadline(rec)} (now {t})", 409)
    submitted = set(state.by_org(ctx, state.UPD, job_id, r))
    if msp not in submitted:
        raise fail(f"{msp} did not submit in round {r}; only survivors reveal seeds", 403)
    rk = state.key(ctx, state.REVEAL, job_id, state.rnd(r), msp)
    if state.get(ctx, rk) is not None:
        raise fail(f"duplicate: {msp} already revealed its seeds for round {r}", 409)
    dropped = sorted(set(rec["participants"]) - submitted)
    if not dropped:
        raise fail(f"nobody dropped out of round {r}; there is nothing to reveal", 409)
    raw = ctx.stub.get_transient().get(TRANSIENT_SEEDS)
    if raw is None:
        raise fail(f"the seeds must be in the transient map under '{TRANSIENT_SEEDS}' as JSON {{dropped_msp: hex}}")
    try:
        seeds = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise fail("transient 'seeds' is not valid JSON") from None
    if not isinstance(seeds, dict) or sorted(seeds) != dropped:
        got = sorted(seeds) if isinstance(seeds, dict) else []
        raise fail(f"seeds must cover exactly the dropped participants {dropped}, got {got}")
    for d, s in seeds.items():
        if not isinstance(s, str) or not SEED_RE.match(s):
            raise fail(f"seed for {d} must be 32 bytes as 64 lowercase hex characters")
    hashes = {d: hashlib.sha256(bytes.fromhex(seeds[d])).hexdigest() for d in dropped}
    for d in dropped:
        ctx.stub.put_private_data(UPDATES_COLLECTION, seed_key(ctx, job_id, r, msp, d), bytes.fromhex(seeds[d]))
    out = {"job_id": job_id, "round": r, "msp_id": msp, "dropped": dropped, "seed_hashes": hashes,
           "revealed_at": t, "tx_id": ctx.stub.tx_id}
    state.put(ctx, rk, out)
    state.emit(ctx, "SeedsRevealed", {"job_id": job_id, "round": r, "msp_id": msp, "dropped": dropped})
    return out
