"""Round records: loading and saving them, opening a round (stake snapshot, leader draw, registering or
straight to collecting) and moving one to collecting.

A round's record is written only when it opens, when it starts collecting and when it closes; in
between every transaction writes its own org's record. The record carries the key-level
stake-weighted policy, so opening, starting and closing need endorsers holding the quorum of stake.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from fabshim.contract import Context
from fedfabric_protocol import deadlines, tally
from fedfabric_protocol.records import RoundRecord
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import Privacy, RoundState

from . import state
from .state import fail


def round_key(ctx: Context, job_id: str, r: int) -> str:
    return state.key(ctx, state.ROUND, job_id, state.rnd(r))


def load(ctx: Context, job_id: str, r: int) -> RoundRecord:
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 10_000:
        raise fail(f"round must be an integer in [1, 10000], got {str(r)[:20]!r}")
    return RoundRecord.from_dict(state.must_get(ctx, round_key(ctx, job_id, r), f"round {r} of job {job_id}"))


def save(ctx: Context, rec: RoundRecord, endorsement: bytes) -> None:
    """Write ``rec`` under the stake-weighted key-level policy ``endorsement``."""
    k = round_key(ctx, rec.job_id, rec.round)
    state.put(ctx, k, rec.to_dict())
    ctx.stub.set_state_validation_parameter(k, endorsement)


def current(ctx: Context, job: dict) -> RoundRecord:
    return load(ctx, job["job_id"], job["current_round"])


def load_current(ctx: Context, job: dict, r: int) -> RoundRecord:
    """Round ``r``, which must be the job's current round."""
    if r != job["current_round"]:
        raise fail(f"wrong round: job {job['job_id']} is at round {job['current_round']}, not {str(r)[:20]}", 409)
    return load(ctx, job["job_id"], r)


def usable_keys(registered: Mapping[str, dict], electorate: Mapping[str, int]) -> dict[str, str]:
    """Round keys of electorate members; a key registered by two orgs counts for neither."""
    keys = {m: reg["public_key"] for m, reg in registered.items() if m in electorate}
    seen: dict[str, int] = {}
    for k in keys.values():
        seen[k] = seen.get(k, 0) + 1
    return {m: k for m, k in sorted(keys.items()) if seen[k] == 1}


def open_round(ctx: Context, spec: JobSpec, r: int, base: dict, orgs: Mapping[str, dict],
               registered: Mapping[str, dict], t: int) -> RoundRecord:
    """Round ``r`` of the job from version ``base``: collecting at once when enough of its electorate
    already registered round keys (the ballots of round r-1 carry them), else registering."""
    electorate = tally.electorate(list(spec.participants), orgs)
    draw = tally.draw_leader(electorate, base["model_hash"], spec.job_id, r) if electorate else {"leader": ""}
    keys = usable_keys(registered, electorate)
    rec = RoundRecord(job_id=spec.job_id, round=r, state=RoundState.REGISTRATION, privacy=spec.privacy,
                      exchange=spec.exchange, leader=draw["leader"], leader_draw=draw,
                      base_version=base["version"], base_hash=base["model_hash"], stakes=electorate,
                      quorum=spec.quorum, min_participants=spec.min_participants,
                      deadlines=deadlines.registration_deadlines(t, spec.windows), opened_at=t,
                      opened_tx=ctx.stub.tx_id, base_state_hash=(base.get("optimizer") or {}).get("state_hash", ""))
    if len(keys) >= spec.min_participants:
        return collecting(ctx, rec, spec, keys, t)
    return rec


def collecting(ctx: Context, rec: RoundRecord, spec: JobSpec, keys: Mapping[str, str], t: int) -> RoundRecord:
    """``rec`` moved to collecting with the participants ``keys`` (MSP id -> round key)."""
    public = dict(keys) if spec.privacy is Privacy.SECURE else {}
    return replace(rec, state=RoundState.COLLECTING, participants=tuple(sorted(keys)), public_keys=public,
                   deadlines=deadlines.collecting_deadlines(t, spec.windows, rec.deadlines.register_by), started_at=t, started_tx=ctx.stub.tx_id)
