"""Training jobs: create (version 0 as the lineage root, round 1 opened), read, list; a round's books."""
from __future__ import annotations

import json
from typing import Any

from fabshim.contract import Context
from fedfabric_protocol.errors import show
from fedfabric_protocol.fields import ident
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import JobStatus

from . import members, roles, rounds, state
from .state import fail

ACTIVE, COMPLETED = JobStatus.ACTIVE.value, JobStatus.COMPLETED.value


def job_key(ctx: Context, job_id: str) -> str:
    return state.key(ctx, state.JOB, job_id)


def load(ctx: Context, job_id: str) -> dict:
    """The job ``job_id`` (every transaction on a job reads it first, so the id is checked here)."""
    return state.must_get(ctx, job_key(ctx, ident(job_id, "job_id")), f"job {job_id}")


def spec_of(job: dict) -> JobSpec:
    """The typed spec of a stored job (stored canonical, so this never refuses)."""
    return JobSpec.from_dict(job["spec"])


def create_job(ctx: Context, spec: dict) -> dict:
    """An org admin creates a job: the spec is validated in full, version 0 is the initial model, and
    round 1 opens for registration (its electorate: the participants active with stake now)."""
    org, _ = roles.require_writer(ctx, "create_job")
    orgs = members.all_orgs(ctx)
    active = sorted(m for m, s in members.stakes(orgs).items() if s > 0)
    s = JobSpec.from_dict(spec, default_participants=active)
    s.check_members({m: o["status"] for m, o in orgs.items()})
    jk = job_key(ctx, s.job_id)
    if state.get(ctx, jk) is not None:
        raise fail(f"job {s.job_id} already exists", 409)
    ep = members.current_endorsement(ctx)
    t = state.now(ctx)
    v0 = {"job_id": s.job_id, "version": 0, "round": 0, "parents": [], "model_hash": s.model.initial_hash,
          "status": "initial", "contributors": [], "approvals": [], "metrics": {}, "tags": {},
          "created_at": t, "tx_ids": {"create": ctx.stub.tx_id}}
    if s.server_optimizer is not None:   # the optimizer starts from the zero state
        v0["optimizer"] = {**s.server_optimizer.to_dict(),
                           "state_hash": s.server_optimizer.initial_state_hash(s.model.num_params)}
    first = rounds.open_round(ctx, s, 1, v0, orgs, {}, t)
    if len(first.electorate) < s.min_participants:
        raise fail(f"only {len(first.electorate)} of the job's participants are active with stake; "
                   f"{s.min_participants} required", 409)
    job = {"job_id": s.job_id, "spec": s.to_dict(), "status": ACTIVE, "current_round": 1, "latest_version": 0,
           "created_by": org["msp_id"], "creator_id": ctx.client_identity.id, "created_at": t,
           "tx_id": ctx.stub.tx_id, "rounds_finalized": 0, "rounds_failed": 0, "dp_epsilon_spent_milli": 0}
    state.put(ctx, jk, job)
    vk = state.key(ctx, state.VERSION, s.job_id, state.rnd(0))
    state.put(ctx, vk, v0)
    state.put(ctx, state.key(ctx, state.ALIAS, s.job_id, "latest"), {"version": 0, "set_at": t, "tx_id": ctx.stub.tx_id})
    ctx.stub.set_state_validation_parameter(jk, ep)
    ctx.stub.set_state_validation_parameter(vk, ep)
    rounds.save(ctx, first, ep)
    state.emit(ctx, "JobCreated", {"job_id": s.job_id, "by": org["msp_id"], "rounds": s.rounds,
                                   "privacy": s.privacy.value, "rule": s.aggregation.name,
                                   "participants": list(s.participants), "next": first.to_dict()})
    return job


def after_round(job: dict, r: int, finalized: bool, **changes: Any) -> dict:
    """The job once round ``r`` closed: counters, the next round, ``completed`` after its last round."""
    counter = "rounds_finalized" if finalized else "rounds_failed"
    last = r >= job["spec"]["rounds"]
    return {**job, **changes, counter: job[counter] + 1, "status": COMPLETED if last else job["status"],
            "current_round": r if last else r + 1}


def get_job(ctx: Context, job_id: str) -> dict:
    roles.require_reader(ctx)
    return load(ctx, job_id)


def list_jobs(ctx: Context, page_size: int, bookmark: str) -> dict:
    roles.require_reader(ctx)
    if not 1 <= page_size <= 1000:
        raise fail("page_size must be in [1, 1000]")
    if bookmark and not (bookmark.startswith(state.key(ctx, state.JOB)) and bookmark.count("\x00") == 3):
        raise fail(f"bookmark {show(bookmark, 80)} is not one list_jobs returned")
    rows, meta = ctx.stub.get_state_by_partial_composite_key_with_pagination(state.JOB, [], page_size, bookmark)
    jobs = [{k: v for k, v in json.loads(raw).items() if k != "spec"} for _, raw in rows]
    return {"jobs": jobs, "bookmark": meta.bookmark, "count": meta.fetched_records_count}
