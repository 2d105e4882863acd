"""Training jobs: create (with version 0 as the lineage root), get, list; closing a round's books."""
from __future__ import annotations

import json
from typing import Any

from fabshim.contract import Context

from . import members, roles, spec as specmod, state
from .state import fail

ACTIVE, COMPLETED = "active", "completed"


def job_key(ctx: Context, job_id: str) -> str:
    return state.key(ctx, state.JOB, job_id)


def load(ctx: Context, job_id: str) -> dict:
    return state.must_get(ctx, job_key(ctx, job_id), f"job {job_id}")


def create_job(ctx: Context, spec: dict) -> dict:
    org, _ = roles.require_writer(ctx, "create_job")
    s = specmod.validate(spec, members.all_orgs(ctx))
    jk = job_key(ctx, s["job_id"])
    if state.get(ctx, jk) is not None:
        raise fail(f"job {s['job_id']} already exists", 409)
    ep = members.current_endorsement(ctx)
    t = state.now(ctx)
    job = {"job_id": s["job_id"], "spec": s, "status": "active", "current_round": 0, "latest_version": 0,
           "created_by": org["msp_id"], "creator_id": ctx.client_identity.id, "created_at": t,
           "tx_id": ctx.stub.tx_id, "rounds_finalized": 0, "rounds_failed": 0, "dp_epsilon_spent_milli": 0}
    v0 = {"job_id": s["job_id"], "version": 0, "round": 0, "parents": [], "model_hash": s["model"]["initial_hash"],
          "status": "initial", "contributors": [], "approvals": [], "metrics": {}, "tags": {},
          "created_at": t, "tx_ids": {"create": ctx.stub.tx_id}}
    state.put(ctx, jk, job)
    vk = state.key(ctx, state.VERSION, s["job_id"], state.rnd(0))
    state.put(ctx, vk, v0)
    state.put(ctx, state.key(ctx, state.ALIAS, s["job_id"], "latest"), {"version": 0, "set_at": t, "tx_id": ctx.stub.tx_id})
    ctx.stub.set_state_validation_parameter(jk, ep)
    ctx.stub.set_state_validation_parameter(vk, ep)
    state.emit(ctx, "JobCreated", {"job_id": s["job_id"], "by": org["msp_id"], "rounds": s["rounds"],
                                   "privacy": s["privacy"], "rule": s["aggregation"]["rule"],
                                   "participants": s["participants"]})
    return job


def after_round(job: dict, r: int, finalized: bool, **changes: Any) -> dict:
    """The job once round ``r`` finalized or failed: counters, and ``completed`` after its last round."""
    counter = "rounds_finalized" if finalized else "rounds_failed"
    status = COMPLETED if r >= job["spec"]["rounds"] else job["status"]
    return {**job, **changes, counter: job[counter] + 1, "status": status}


def emit_round_end(ctx: Context, before: dict, after: dict, name: str, payload: dict) -> None:
    """The round's closing event; when the job switches to ``completed`` in the same transaction the
    one event of the transaction is ``JobCompleted``, carrying the round's event name and payload."""
    if after["status"] == COMPLETED and before["status"] != COMPLETED:
        state.emit(ctx, "JobCompleted", {**payload, "round_event": name, "status": COMPLETED,
                                         "rounds_finalized": after["rounds_finalized"],
                                         "rounds_failed": after["rounds_failed"],
                                         "latest_version": after["latest_version"],
                                         "dp_epsilon_spent_milli": after.get("dp_epsilon_spent_milli", 0)})
    else:
        state.emit(ctx, name, payload)


def get_job(ctx: Context, job_id: str) -> dict:
    roles.require_reader(ctx)
    return load(ctx, job_id)


def list_jobs(ctx: Context, page_size: int, bookmark: str) -> dict:
    roles.require_reader(ctx)
    if not 1 <= page_size <= 1000:
        raise fail("page_size must be in [1, 1000]")
    rows, meta = ctx.stub.get_state_by_partial_composite_key_with_pagination(state.JOB, [], page_size, bookmark)
    jobs = [{k: v for k, v in json.loads(raw).items() if k != "spec"} for _, raw in rows]
    return {"jobs": jobs, "bookmark": meta.bookmark, "count": meta.fetched_records_count}
