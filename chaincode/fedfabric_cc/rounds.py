"""Rounds as a state machine: open -> registration -> collecting -> aggregated -> finalized | failed.

Every non-final state has a deadline in transaction time (``deadlines``: open, registration,
submission + reveal, approval); past it the round moves on or anyone fails it (``expiry``). Only
the job's participants that are active with stake when the round opens take part (``stakes``).
"""
from __future__ import annotations

import hashlib
import re

from fabshim.contract import Context

from . import jobs, members, roles, state
from .state import fail

OPEN, REGISTRATION, COLLECTING, AGGREGATED, FINALIZED, FAILED = (
    "open", "registration", "collecting", "aggregated", "finalized", "failed")
TRANSITIONS = {OPEN: (REGISTRATION, FAILED), REGISTRATION: (COLLECTING, FAILED),
               COLLECTING: (AGGREGATED, FAILED), AGGREGATED: (FINALIZED, FAILED), FINALIZED: (), FAILED: ()}
PARTICIPANT_ROLES = (roles.ADMIN, roles.TRAINER)
PUBKEY_RE = re.compile(r"^[0-9a-f]{64}$")


def round_key(ctx: Context, job_id: str, r: int) -> str:
    return state.key(ctx, state.ROUND, job_id, state.rnd(r))


def load(ctx: Context, job_id: str, r: int) -> dict:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise fail(f"round must be a positive integer, got {r!r}")
    return state.must_get(ctx, round_key(ctx, job_id, r), f"round {r} of job {job_id}")


def expect(rec: dict, *states: str) -> None:
    if rec["state"] not in states:
        raise fail(f"round {rec['round']} of job {rec['job_id']} is {rec['state']}, expected {' or '.join(states)}", 409)


def advance(ctx: Context, rec: dict, to: str, **changes) -> dict:
    """A copy of ``rec`` moved to state ``to`` (illegal transitions refused), stamped with time and tx."""
    if to not in TRANSITIONS[rec["state"]]:
        raise fail(f"illegal transition {rec['state']} -> {to} for round {rec['round']} of job {rec['job_id']}", 409)
    out = {**rec, **changes, "state": to, "times": {**rec["times"], to: state.now(ctx)},
           "tx_ids": {**rec["tx_ids"], to: ctx.stub.tx_id}}
    return out


def draw_leader(stake_map: dict[str, int], prev_hash: str, job_id: str, r: int) -> dict:
    """Stake-weighted deterministic draw seeded by the previous model hash."""
    total = sum(stake_map.values())
    if total <= 0:
        raise fail("no active stake to draw a leader from")
    seed = hashlib.sha256(f"{prev_hash}|{job_id}|{r}".encode()).digest()
    value = int.from_bytes(seed, "big") % total
    acc = 0
    for msp in sorted(stake_map):
        acc += stake_map[msp]
        if value < acc:
            return {"leader": msp, "seed": seed.hex(), "value": value, "total_stake": total}
    raise AssertionError("unreachable")


def eligible_stakes(job: dict, orgs: dict[str, dict]) -> dict[str, int]:
    """Stake of the job's participants that are active members with stake now: the round's electorate."""
    active = members.stakes(orgs)
    return {m: active[m] for m in job["spec"].get("participants", sorted(orgs)) if active.get(m, 0) > 0}


def open_round(ctx: Context, job_id: str) -> dict:
    org, _ = roles.require_writer(ctx, "open_round", PARTICIPANT_ROLES)
    job = jobs.load(ctx, job_id)
    if job["status"] != jobs.ACTIVE:
        raise fail(f"job {job_id} is {job['status']}; no more rounds", 409)
    r = job["current_round"]
    if r:
        prev = load(ctx, job_id, r)
        if prev["state"] not in (FINALIZED, FAILED):
            raise fail(f"round {r} of job {job_id} is still {prev['state']}; finish it before opening round {r + 1}", 409)
    if r >= job["spec"]["rounds"]:
        raise fail(f"job {job_id} has used all {job['spec']['rounds']} rounds", 409)
    base = state.must_get(ctx, state.key(ctx, state.VERSION, job_id, state.rnd(job["latest_version"])), "base version")
    st = eligible_stakes(job, members.all_orgs(ctx))
    need = job["spec"]["min_participants"]
    if len(st) < need:
        raise fail(f"only {len(st)} of job {job_id}'s participants are active with stake "
                   f"({', '.join(sorted(st)) or 'none'}); {need} required to open a round", 409)
    draw = draw_leader(st, base["model_hash"], job_id, r + 1)
    t = state.now(ctx)
    deadline = t + job["spec"]["windows"]["registration_s"]
    rec = {"job_id": job_id, "round": r + 1, "state": OPEN, "leader": draw["leader"], "leader_draw": draw,
           "base_version": base["version"], "base_hash": base["model_hash"], "stakes": st, "eligible": sorted(st),
           "quorum": job["spec"]["quorum"], "privacy": job["spec"]["privacy"], "participants": [], "submitted": [],
           "dropped": [], "deadlines": {OPEN: deadline}, "times": {OPEN: t}, "tx_ids": {OPEN: ctx.stub.tx_id},
           "opened_by": org["msp_id"]}
    state.put(ctx, round_key(ctx, job_id, r + 1), rec)
    state.put(ctx, jobs.job_key(ctx, job_id), {**job, "current_round": r + 1})
    state.emit(ctx, "RoundOpened", {"job_id": job_id, "round": r + 1, "leader": draw["leader"],
                                    "base_version": base["version"], "base_hash": base["model_hash"],
                                    "eligible": rec["eligible"], "deadline": deadline})
    return rec


def start_registration(ctx: Context, job_id: str, r: int) -> dict:
    roles.require_writer(ctx, "start_registration", PARTICIPANT_ROLES)
    job = jobs.load(ctx, job_id)
    rec = load(ctx, job_id, r)
    expect(rec, OPEN)
    t = state.now(ctx)
    start_by = rec["deadlines"].get(OPEN)
    if start_by is not None and t > start_by:
        raise fail(f"too late: registration for round {r} of job {job_id} had to start by {start_by} (now {t}); "
                   f"expire_round fails the round", 409)
    deadline = t + job["spec"]["windows"]["registration_s"]
    rec = advance(ctx, rec, REGISTRATION, deadlines={**rec["deadlines"], "registration": deadline})
    state.put(ctx, round_key(ctx, job_id, r), rec)
    state.emit(ctx, "RegistrationStarted", {"job_id": job_id, "round": r, "deadline": deadline})
    return rec


def register(ctx: Context, job_id: str, r: int, public_key: str) -> dict:
    org, _ = roles.require_writer(ctx, "register", PARTICIPANT_ROLES)
    job = jobs.load(ctx, job_id)
    rec = load(ctx, job_id, r)
    expect(rec, REGISTRATION)
    t = state.now(ctx)
    msp = org["msp_id"]
    if t > rec["deadlines"]["registration"]:
        raise fail(f"registration for round {r} of job {job_id} closed at {rec['deadlines']['registration']} (now {t})", 409)
    if msp not in job["spec"].get("participants", [msp]):
        raise fail(f"{msp} is not a participant of job {job_id}", 403)
    if rec["stakes"].get(msp, 0) <= 0:
        raise fail(f"{msp} had no stake when round {r} opened and cannot participate", 403)
    if not isinstance(public_key, str) or not PUBKEY_RE.match(public_key):
        raise fail("public_key must be a raw X25519 public key as 64 lowercase hex characters")
    if state.get(ctx, state.key(ctx, state.REG, job_id, state.rnd(r), msp)) is not None:
        raise fail(f"{msp} is already registered for round {r} of job {job_id}", 409)
    for attrs, other in state.scan(ctx, state.REG, job_id, state.rnd(r)):
        if other["public_key"] == public_key:
            raise fail(f"public key already used by {attrs[-1]} in this round; generate a fresh key", 409)
    if r > 1:
        prev = state.get(ctx, state.key(ctx, state.REG, job_id, state.rnd(r - 1), msp))
        if prev is not None and prev["public_key"] == public_key:
            raise fail(f"public key reused from round {r - 1}; each round needs a fresh X25519 key", 409)
    reg = {"job_id": job_id, "round": r, "msp_id": msp, "public_key": public_key, "registered_at": t,
           "tx_id": ctx.stub.tx_id, "client_id": ctx.client_identity.id}
    state.put(ctx, state.key(ctx, state.REG, job_id, state.rnd(r), msp), reg)
    state.emit(ctx, "Registered", {"job_id": job_id, "round": r, "msp_id": msp, "public_key": public_key})
    return reg


def registrations(ctx: Context, job_id: str, r: int) -> dict[str, dict]:
    return state.by_org(ctx, state.REG, job_id, r)


def close_registration(ctx: Context, job_id: str, r: int) -> dict:
    """registration -> collecting (enough registered) or -> failed (window over, too few)."""
    roles.require_writer(ctx, "close_registration", PARTICIPANT_ROLES)
    job = jobs.load(ctx, job_id)
    rec = load(ctx, job_id, r)
    expect(rec, REGISTRATION)
    regs = registrations(ctx, job_id, r)
    t = state.now(ctx)
    everyone = set(regs) >= set(rec["stakes"])
    need = job["spec"]["min_participants"]
    if not everyone and t <= rec["deadlines"]["registration"]:
        raise fail(f"registration for round {r} is open until {rec['deadlines']['registration']} "
                   f"({len(regs)} of {len(rec['stakes'])} registered)", 409)
    if len(regs) < need:
        return fail_round(ctx, job, rec, f"only {len(regs)} registered, {need} required", participants=sorted(regs))
    windows = job["spec"]["windows"]
    deadline = t + windows["submission_s"]
    reveal = deadline + windows.get("reveal_s", windows["submission_s"])
    rec = advance(ctx, rec, COLLECTING, participants=sorted(regs),
                  deadlines={**rec["deadlines"], "submission": deadline, "reveal": reveal})
    state.put(ctx, round_key(ctx, job_id, r), rec)
    state.emit(ctx, "CollectingStarted", {"job_id": job_id, "round": r, "participants": rec["participants"],
                                          "public_keys": {m: regs[m]["public_key"] for m in sorted(regs)},
                                          "deadline": deadline, "reveal_deadline": reveal})
    return rec


def reveal_deadline(rec: dict) -> int:
    """End of the seed-reveal window of a collecting round (rounds opened before it existed: the
    submission deadline plus the submission window)."""
    d = rec["deadlines"]
    return d.get("reveal", d["submission"] + (d["submission"] - rec["times"][COLLECTING]))


def fail_round(ctx: Context, job: dict, rec: dict, reason: str, absent: list[str] = (), anomalous: list[str] = (),
               no_reveal: list[str] = (), **changes) -> dict:
    """Move ``rec`` to failed; write it, the job's counters and any slashing; emit ``RoundFailed`` (or
    ``JobCompleted`` when it was the job's last round) with the reason and the settlement."""
    from . import incentives  # imported here: incentives -> updates -> rounds
    failed = advance(ctx, rec, FAILED, reason=reason, failed_from=rec["state"], **changes)
    settled = incentives.settle(ctx, job, failed, rewards={}, absent=list(absent), anomalous=list(anomalous),
                                no_reveal=list(no_reveal))
    failed = {**failed, "settlement": {"rewards": settled["rewards"], "slashed": settled["slashed"]}}
    state.put(ctx, round_key(ctx, rec["job_id"], rec["round"]), failed)
    after = jobs.after_round(job, rec["round"], finalized=False)
    state.put(ctx, jobs.job_key(ctx, job["job_id"]), after)
    jobs.emit_round_end(ctx, job, after, "RoundFailed",
                        {"job_id": job["job_id"], "round": rec["round"], "reason": reason, "from": rec["state"],
                         "rewards": settled["rewards"], "slashed": settled["slashed"], "policy": settled["policy"]})
    return failed
