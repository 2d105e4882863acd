"""Liveness: any participant fails a round that is stuck past its deadline (transaction time only).

=============  ==========================  =====================================================
state          expires after               unless
=============  ==========================  =====================================================
open           ``deadlines.open``          (registration was never started)
registration   ``deadlines.registration``  enough orgs registered (close_registration moves on)
collecting     ``deadlines.reveal``        (submission window + seed-reveal window)
aggregated     ``deadlines.approval``      a model hash reached the quorum (finalize_round)
=============  ==========================  =====================================================

Only public state decides, so every endorser agrees. A collecting round that expires slashes the
registered orgs that did not submit and, in secure mode, the survivors that did not reveal their
seeds for them; an aggregated one slashes like a failed vote.
"""
from __future__ import annotations

from fabshim.contract import Context

from . import aggregator, jobs, models, roles, rounds, state
from .state import fail


def state_deadline(rec: dict) -> int:
    """When a non-final round's current state times out (transaction-time seconds)."""
    s, d = rec["state"], rec["deadlines"]
    if s == rounds.OPEN:
        return d.get(rounds.OPEN, rec["times"][rounds.OPEN])
    if s == rounds.REGISTRATION:
        return d["registration"]
    if s == rounds.COLLECTING:
        return rounds.reveal_deadline(rec)
    return d["approval"]


def _collecting(ctx: Context, job: dict, rec: dict, t: int) -> dict:
    job_id, r = job["job_id"], rec["round"]
    metas = state.by_org(ctx, state.UPD, job_id, r)
    reveals = state.by_org(ctx, state.REVEAL, job_id, r)
    return rounds.fail_round(ctx, job, rec, **aggregator.collecting_failure(rec, job, metas, reveals, t, expired=True))


def expire_round(ctx: Context, job_id: str, r: int) -> dict:
    """Fail round ``r`` once its current state's deadline passed without the round moving on."""
    roles.require_writer(ctx, "expire_round", rounds.PARTICIPANT_ROLES)
    job = jobs.load(ctx, job_id)
    rec = rounds.load(ctx, job_id, r)
    rounds.expect(rec, rounds.OPEN, rounds.REGISTRATION, rounds.COLLECTING, rounds.AGGREGATED)
    t = state.now(ctx)
    deadline = state_deadline(rec)
    if t <= deadline:
        raise fail(f"round {r} of job {job_id} is {rec['state']} until {deadline} (now {t}); nothing to expire yet", 409)
    if rec["state"] == rounds.OPEN:
        return rounds.fail_round(ctx, job, rec, f"registration was not started by the deadline {deadline}")
    if rec["state"] == rounds.REGISTRATION:
        regs = rounds.registrations(ctx, job_id, r)
        need = job["spec"]["min_participants"]
        if len(regs) >= need:
            raise fail(f"round {r} of job {job_id} has {len(regs)} registrations ({need} required): "
                       f"close_registration moves it to collecting", 409)
        return rounds.fail_round(ctx, job, rec, f"only {len(regs)} registered by the deadline {deadline}, "
                                                f"{need} required", participants=sorted(regs))
    if rec["state"] == rounds.COLLECTING:
        return _collecting(ctx, job, rec, t)
    tl = models.round_tally(ctx, rec, state.by_org(ctx, state.VOTE, job_id, r))
    if tl["winner"] is not None:
        raise fail(f"round {r} of job {job_id} reached the approval quorum: finalize_round finalizes it", 409)
    return models.fail_vote(ctx, job, rec, tl)
