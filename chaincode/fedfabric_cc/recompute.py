"""Endorsed aggregation: every endorsing peer recomputes a round's aggregate from the private payloads,
and the server optimizer's step from the base version's state.

Used when a round closes on a result whose payloads travelled in the private collection: the
endorsers compute the aggregate over the winning ballots' contributors with the same protocol code
the nodes ran, then the step, and the round finalizes only if both are the same bit for bit. The
optimizer state itself is not on the ledger (its hash is, on every version): the finalizer passes
the base version's state in the transient map and the endorsers check it against that hash.
"""
from __future__ import annotations

from typing import Mapping

from fabshim.contract import Context
from fedfabric_protocol import aggregate, codec, optimizers
from fedfabric_protocol.aggregate import Aggregate
from fedfabric_protocol.optimizers import Step
from fedfabric_protocol.records import RoundRecord
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import Privacy, Transient

from . import updates
from .state import fail


def endorsed_aggregate(ctx: Context, spec: JobSpec, rec: RoundRecord, contributors: tuple[str, ...],
                       upds: Mapping[str, dict], reveals: Mapping[str, dict]) -> tuple[Aggregate, dict[str, int]]:
    """The aggregate over ``contributors`` and (clear mode) each update's leave-one-out distance."""
    n = spec.model.num_params
    job_id, r = spec.job_id, rec.round
    words = {m: codec.unpack(updates.update_bytes(ctx, job_id, r, m, upds[m]), n) for m in contributors}
    samples = {m: int(upds[m]["sample_count"]) for m in contributors}
    if rec.privacy is Privacy.SECURE:
        left_out = sorted(set(rec.participants) - set(contributors))
        seeds = {(s, d): updates.seed_bytes(ctx, job_id, r, s, d, reveals[s]) for s in contributors for d in left_out}
        return aggregate.secure_aggregate(spec.aggregation, words, samples, seeds, left_out), {}
    agg = aggregate.clear_aggregate(spec.aggregation, words, samples, spec.incentives.anomaly_factor)
    return agg, aggregate.leave_one_out(spec.aggregation, words, samples, agg)


def base_optimizer_state(ctx: Context, spec: JobSpec, rec: RoundRecord) -> bytes | None:
    """The optimizer state after the round's base version: None for the zero state of version 0, else the
    transient ``optimizer_state``, which must hash to the base version's recorded state hash."""
    opt, n = spec.server_optimizer, spec.model.num_params
    if rec.base_state_hash == opt.initial_state_hash(n):
        return None
    data = ctx.stub.get_transient().get(Transient.OPTIMIZER_STATE.value)
    if data is None:
        raise fail(f"finalize_round of job {spec.job_id} needs the optimizer state of version {rec.base_version} "
                   f"in the transient map under '{Transient.OPTIMIZER_STATE.value}'", 409)
    if len(data) != opt.state_bytes(n) or optimizers.state_hash(data) != rec.base_state_hash:
        raise fail(f"transient '{Transient.OPTIMIZER_STATE.value}' ({len(data)} bytes) is not the optimizer state of "
                   f"version {rec.base_version} (state hash {rec.base_state_hash[:16]}…)")
    return data


def endorsed_step(spec: JobSpec, agg: Aggregate, state: bytes | None) -> Step:
    """The server optimizer's step over the recomputed aggregate."""
    return optimizers.server_step(spec.server_optimizer, agg.words, state)
