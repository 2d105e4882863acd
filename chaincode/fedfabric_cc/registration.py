"""Round keys: a participant registers a fresh X25519 key per round; a registering round starts collecting.

Keys usually arrive with the ballots of the round before (``votes``); ``register`` is for round 1,
for a round that opened registering, and for an org that missed a vote and rejoins the next round.
"""
from __future__ import annotations

from typing import Optional

from fabshim.contract import Context
from fedfabric_protocol import deadlines
from fedfabric_protocol.deadlines import Activity
from fedfabric_protocol.errors import show
from fedfabric_protocol.fields import HEX64, matches

from . import closing, jobs, members, roles, rounds, state
from .state import fail


def check_public_key(public_key: object, previous: Optional[str]) -> str:
    if not matches(HEX64, public_key):
        raise fail("public_key must be a raw X25519 public key as 64 lowercase hex characters")
    if public_key == previous:
        raise fail("public key reused from the previous round; each round needs a fresh X25519 key", 409)
    return public_key


def registration_record(ctx: Context, job_id: str, r: int, msp: str, public_key: str, via: str) -> dict:
    return {"job_id": job_id, "round": r, "msp_id": msp, "public_key": public_key, "registered_at": state.now(ctx),
            "tx_id": ctx.stub.tx_id, "via": via}


def register(ctx: Context, job_id: str, r: int, public_key: str) -> dict:
    """A participant's fresh X25519 key for round ``r``: the current round while it registers, or the next
    round while the current one collects (how an org that missed a vote rejoins)."""
    job = jobs.load(ctx, job_id)
    spec = jobs.spec_of(job)
    org = roles.require_participant(ctx, "register", list(spec.participants), job_id)
    msp = org["msp_id"]
    rec = rounds.current(ctx, job)
    if (r == rec.round + 1 and r > spec.rounds) or not 0 <= r <= spec.rounds + 1:   # (and r's size is bounded)
        raise fail(f"job {job_id} has {spec.rounds} rounds; there is no round {show(r, 20)}", 409)
    deadlines.check_register(rec, r, state.now(ctx))
    if r == rec.round and rec.stakes.get(msp, 0) <= 0:
        raise fail(f"{msp} had no stake when round {r} of job {job_id} opened and cannot take part", 403)
    if members.stakes({msp: org}).get(msp, 0) <= 0:
        raise fail(f"{msp} holds no stake and cannot take part", 403)
    rk = state.round_key(ctx, state.REG, job_id, r, msp)
    if state.get(ctx, rk) is not None:
        raise fail(f"{msp} is already registered for round {r} of job {job_id}", 409)
    previous = rec.public_keys.get(msp) if r == rec.round + 1 else _previous_key(ctx, job_id, r, msp)
    reg = registration_record(ctx, job_id, r, msp, check_public_key(public_key, previous), "register")
    state.put(ctx, rk, reg)
    state.emit(ctx, "Registered", {"job_id": job_id, "round": r, "msp_id": msp, "public_key": public_key})
    return reg


def _previous_key(ctx: Context, job_id: str, r: int, msp: str) -> Optional[str]:
    if r <= 1:
        return None
    return rounds.load(ctx, job_id, r - 1).public_keys.get(msp)


def start_round(ctx: Context, job_id: str, r: int) -> dict:
    """registration -> collecting once every electorate member registered or the window closed; a
    round left with fewer than ``min_participants`` keys fails and the next one opens."""
    job = jobs.load(ctx, job_id)
    spec = jobs.spec_of(job)
    roles.require_participant(ctx, "start_round", list(spec.participants), job_id)
    rec = rounds.load(ctx, job_id, r)
    registered = state.per_org(ctx, state.REG, job_id, r, rec.electorate)
    t = state.now(ctx)
    deadlines.check_start(rec, Activity(registered=frozenset(registered)), t)
    keys = rounds.usable_keys(registered, rec.stakes)
    if len(keys) < spec.min_participants:
        return closing.fail_registration(ctx, job, spec, rec, f"only {len(keys)} registered by {rec.deadlines.register_by}, "
                                                      f"{spec.min_participants} required", t)
    started = rounds.collecting(ctx, rec, spec, keys, t)
    rounds.save(ctx, started, members.current_endorsement(ctx))
    state.emit(ctx, "RoundStarted", {"job_id": job_id, "round": r, "record": started.to_dict()})
    return started.to_dict()
