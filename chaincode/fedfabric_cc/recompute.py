"""Endorsed aggregation: every endorsing peer recomputes a round's aggregate from the private payloads.

Used when a round closes on a result whose payloads travelled in the private collection: the
endorsers compute the aggregate over the winning ballots' contributors with the same protocol code
the nodes ran, and the round finalizes only if the result is the same bit for bit.
"""
from __future__ import annotations

from typing import Mapping

from fabshim.contract import Context
from fedfabric_protocol import aggregate, codec
from fedfabric_protocol.aggregate import Aggregate
from fedfabric_protocol.records import RoundRecord
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import Privacy

from . import updates


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
