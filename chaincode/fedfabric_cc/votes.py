"""Ballots: each org votes on the result it computed itself and, in the same transaction, registers its
round key for the next round (so the next round can open collecting, with no registration phase)."""
from __future__ import annotations

from fabshim.contract import Context
from fedfabric_protocol import deadlines
from fedfabric_protocol.deadlines import Activity
from fedfabric_protocol.records import Ballot
from fedfabric_protocol.states import Privacy

from . import jobs, members, registration, roles, rounds, state, updates
from .state import fail


def vote(ctx: Context, job_id: str, r: int, ballot: dict) -> dict:
    """A vote on round ``r``: approve (or not) the result (aggregate hash over named contributors,
    candidate model hash, flagged updates) this org computed itself, with its evaluation metrics."""
    job = jobs.load(ctx, job_id)
    spec = jobs.spec_of(job)
    org = roles.require_participant(ctx, "vote", list(spec.participants), job_id)
    msp = org["msp_id"]
    rec = rounds.load_current(ctx, job, r)
    b = Ballot.from_dict(ballot)
    if b.result is not None and bool(b.result.step_hash) != (spec.server_optimizer is not None):
        raise fail(f"ballot.step_hash and ballot.state_hash are required exactly when the job has a server "
                   f"optimizer (job {job_id}: {spec.server_optimizer.name if spec.server_optimizer else 'none'})")
    upds = state.per_org(ctx, state.UPD, job_id, r, rec.participants)
    reveals = {}
    if rec.privacy is Privacy.SECURE and b.result is not None and set(b.result.contributors) != set(rec.participants):
        reveals = state.per_org(ctx, state.REVEAL, job_id, r, b.result.contributors)
    vk = state.round_key(ctx, state.VOTE, job_id, r, msp)
    mine = state.get(ctx, vk) is not None
    t = state.now(ctx)
    deadlines.check_vote(rec, msp, b, Activity(submitted=frozenset(upds), reveals=updates.reveals_of(reveals),
                                               voted=frozenset({msp} if mine else ())), t)
    nk = None
    if b.next_public_key is not None:
        if r >= spec.rounds:
            raise fail(f"round {r} is the last of job {job_id}: ballot.next_public_key must be null")
        if members.stakes({msp: org}).get(msp, 0) <= 0:
            raise fail(f"{msp} holds no stake and cannot take part in round {r + 1}", 403)
        nk = state.round_key(ctx, state.REG, job_id, r + 1, msp)
        if state.get(ctx, nk) is not None:
            raise fail(f"{msp} is already registered for round {r + 1} of job {job_id}", 409)
        registration.check_public_key(b.next_public_key, rec.public_keys.get(msp))
    out = {**b.to_dict(), "job_id": job_id, "round": r, "msp_id": msp, "stake": rec.stakes[msp], "voted_at": t,
           "tx_id": ctx.stub.tx_id}
    if b.result is not None:
        out["result_key"] = b.result.key
    state.put(ctx, vk, out)
    if nk is not None:
        state.put(ctx, nk, registration.registration_record(ctx, job_id, r + 1, msp, b.next_public_key, "vote"))
    state.emit(ctx, "Voted", {"job_id": job_id, "round": r, "msp_id": msp, "approve": b.approve,
                              "result_key": out.get("result_key"), "next_public_key": b.next_public_key})
    return out
