"""Deadline and phase rules of a round: when each transaction is allowed, and where a round stands.

Time is transaction time in seconds. The contract calls the ``check_*`` functions (each raises a
:class:`ProtocolError` with status 409 for "not now" and 403 for "not you"); the node calls
:func:`phase` and the same checks to decide what is due, so both sides follow one set of rules.
Every deadline that lets a round move on without someone is checked by endorsers whose own clocks
bound the proposal's timestamp (``max_clock_skew_s``), under the stake-weighted policy.

A collecting round, with every deadline counted from the moment it started collecting:

    submit_by = start + submission_s     updates accepted until then (or until everyone submitted)
    reveal_by = submit_by + reveal_s     secure mode: survivors reveal their seeds with the dropped
    vote_by   = reveal_by + approval_s   ballots accepted until then; the round closes when every
                                         submitter voted, or after vote_by
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import AbstractSet, Mapping, Optional

from .errors import refuse
from .records import Ballot, Deadlines, RoundRecord
from .spec import Windows
from .states import Exchange, Phase, Privacy, RoundState
from .tally import Tally


def registration_deadlines(now: int, windows: Windows) -> Deadlines:
    return Deadlines(register_by=now + windows.registration_s)


def collecting_deadlines(now: int, windows: Windows, register_by: int = 0) -> Deadlines:
    submit_by = now + windows.submission_s
    reveal_by = submit_by + windows.reveal_s
    return Deadlines(register_by, submit_by, reveal_by, reveal_by + windows.approval_s)


@dataclass(frozen=True)
class Activity:
    """What happened in a round so far, from its per-org records: who registered, submitted, revealed
    (and for whom), voted."""

    registered: AbstractSet[str] = frozenset()
    submitted: AbstractSet[str] = frozenset()
    reveals: Mapping[str, AbstractSet[str]] = field(default_factory=dict)
    voted: AbstractSet[str] = frozenset()


def dropped(rec: RoundRecord, act: Activity) -> list[str]:
    """Participants that have not submitted."""
    return sorted(set(rec.participants) - set(act.submitted))


def submission_closed(rec: RoundRecord, act: Activity, now: int) -> bool:
    return set(act.submitted) >= set(rec.participants) or now > rec.deadlines.submit_by


def missing_reveals(rec: RoundRecord, act: Activity, contributors: AbstractSet[str]) -> list[str]:
    """Secure mode: contributors that have not revealed their seeds for every participant left out."""
    if rec.privacy is not Privacy.SECURE:
        return []
    left_out = set(rec.participants) - set(contributors)
    if not left_out:
        return []
    return sorted(c for c in contributors if not left_out <= set(act.reveals.get(c, ())))


def _reveals_overdue(rec: RoundRecord, act: Activity, now: int) -> bool:
    return now > rec.deadlines.reveal_by and bool(missing_reveals(rec, act, set(act.submitted)))


def may_close(rec: RoundRecord, act: Activity, now: int) -> bool:
    """Every submitter voted, the vote window closed, seeds needed for the dropped never came, or too few
    updates came for the round to finalize at all."""
    if rec.state is not RoundState.COLLECTING or not submission_closed(rec, act, now):
        return False
    everyone_voted = set(act.submitted) <= set(act.voted)
    return (everyone_voted or now > rec.deadlines.vote_by or _reveals_overdue(rec, act, now)
            or len(act.submitted) < rec.min_participants)


def phase(rec: RoundRecord, act: Activity, now: int) -> Phase:
    """Where ``rec`` stands at ``now``."""
    if rec.state.closed:
        return Phase.CLOSED
    if rec.state is RoundState.REGISTRATION:
        everyone = set(act.registered) >= set(rec.electorate)
        return Phase.STARTING if everyone or now > rec.deadlines.register_by else Phase.REGISTERING
    if not submission_closed(rec, act, now):
        return Phase.SUBMITTING
    if may_close(rec, act, now):
        return Phase.CLOSING
    if missing_reveals(rec, act, set(act.submitted)):
        return Phase.REVEALING
    return Phase.VOTING


def _late(what: str, deadline: int, now: int) -> None:
    if now > deadline:
        raise refuse(f"too late: {what} closed at {deadline} (now {now})", 409)


def _expect(rec: RoundRecord, state: RoundState) -> None:
    if rec.state is not state:
        raise refuse(f"round {rec.round} of job {rec.job_id} is {rec.state.value}, not {state.value}", 409)


def check_register(rec: RoundRecord, target: int, now: int) -> None:
    """A round key for round ``target`` while ``rec`` is the job's current round: the current round if it is
    registering (before ``register_by``), or the next one while the current round collects."""
    if target == rec.round and rec.state is RoundState.REGISTRATION:
        _late(f"registration for round {target} of job {rec.job_id}", rec.deadlines.register_by, now)
        return
    if target == rec.round + 1 and rec.state is RoundState.COLLECTING:
        return
    raise refuse(f"round {target} of job {rec.job_id} takes no registrations now (round {rec.round} is "
                 f"{rec.state.value}; keys go to a registering round or to the round after a collecting one)", 409)


def check_start(rec: RoundRecord, act: Activity, now: int) -> None:
    """registration -> collecting once every electorate member registered or the window closed."""
    _expect(rec, RoundState.REGISTRATION)
    everyone = set(act.registered) >= set(rec.electorate)
    if not everyone and now <= rec.deadlines.register_by:
        raise refuse(f"registration for round {rec.round} of job {rec.job_id} is open until "
                     f"{rec.deadlines.register_by} ({len(act.registered)} of {len(rec.electorate)} registered)", 409)


def check_submit(rec: RoundRecord, msp: str, act: Activity, now: int) -> None:
    _expect(rec, RoundState.COLLECTING)
    _late(f"the submission window of round {rec.round}", rec.deadlines.submit_by, now)
    if msp not in rec.participants:
        raise refuse(f"{msp} is not a participant of round {rec.round} of job {rec.job_id} "
                     f"(participants: {', '.join(rec.participants)})", 403)
    if msp in act.submitted:
        raise refuse(f"duplicate: {msp} already submitted an update for round {rec.round} of job {rec.job_id}", 409)
    if act.reveals:
        raise refuse(f"round {rec.round} of job {rec.job_id}: seeds were already revealed for dropped "
                     "participants; no update can follow", 409)


def check_reveal(rec: RoundRecord, msp: str, left_out: AbstractSet[str], act: Activity, now: int) -> None:
    """A survivor reveals its seeds for ``left_out``: participants that did not submit (after the window),
    and, when payloads travel node to node, submitters whose bytes it could not verify."""
    _expect(rec, RoundState.COLLECTING)
    if rec.privacy is not Privacy.SECURE:
        raise refuse("seed reveals exist only in secure mode", 409)
    _late(f"the seed-reveal window of round {rec.round}", rec.deadlines.reveal_by, now)
    if msp not in act.submitted:
        raise refuse(f"{msp} did not submit in round {rec.round}; only survivors reveal seeds", 403)
    if msp in act.reveals:
        raise refuse(f"duplicate: {msp} already revealed its seeds for round {rec.round}", 409)
    unknown = sorted(set(left_out) - set(rec.participants))
    if not left_out or unknown or msp in left_out:
        raise refuse(f"seeds are revealed for other participants of round {rec.round}, got "
                     f"{', '.join(sorted(left_out)) or 'none'}")
    not_in = set(left_out) - set(act.submitted)
    if not_in and now <= rec.deadlines.submit_by:
        raise refuse(f"the submission window of round {rec.round} is open until {rec.deadlines.submit_by}; "
                     f"reveal for {', '.join(sorted(not_in))} after it closes", 409)
    if set(left_out) & set(act.submitted) and rec.exchange is not Exchange.NODES:
        raise refuse(f"{', '.join(sorted(set(left_out) & set(act.submitted)))} submitted; with payloads in the "
                     "private collection only orgs that did not submit are left out", 409)
    missing = sorted(set(rec.participants) - set(act.submitted) - set(left_out))
    if missing:
        raise refuse(f"reveal for every participant that did not submit: {', '.join(missing)} missing")


def check_vote(rec: RoundRecord, msp: str, ballot: Ballot, act: Activity, now: int) -> None:
    _expect(rec, RoundState.COLLECTING)
    if rec.stakes.get(msp, 0) <= 0:
        raise refuse(f"{msp} had no stake as a participant of job {rec.job_id} when round {rec.round} opened "
                     "and cannot vote", 403)
    if msp in act.voted:
        raise refuse(f"duplicate: {msp} already voted in round {rec.round} of job {rec.job_id}", 409)
    _late(f"the vote window of round {rec.round}", rec.deadlines.vote_by, now)
    if not submission_closed(rec, act, now):
        raise refuse(f"round {rec.round} is collecting until {rec.deadlines.submit_by} "
                     f"({len(act.submitted)} of {len(rec.participants)} submitted)", 409)
    res = ballot.result
    if res is None:
        return
    contributors = set(res.contributors)
    if not contributors <= set(act.submitted):
        raise refuse(f"ballot.contributors names orgs without an update in round {rec.round}: "
                     f"{', '.join(sorted(contributors - set(act.submitted)))}")
    if len(contributors) < rec.min_participants:
        raise refuse(f"ballot.contributors has {len(contributors)} updates, the job needs "
                     f"{rec.min_participants}")
    if rec.exchange is Exchange.ENDORSED and contributors != set(act.submitted):
        raise refuse("with payloads in the private collection every submitted update counts: ballot.contributors "
                     f"must be {', '.join(sorted(act.submitted))}")
    missing = missing_reveals(rec, act, contributors)
    if missing:
        raise refuse(f"waiting for seed reveals from {', '.join(missing)} for "
                     f"{', '.join(sorted(set(rec.participants) - contributors))}", 409)


def check_close(rec: RoundRecord, act: Activity, now: int) -> None:
    _expect(rec, RoundState.COLLECTING)
    if not submission_closed(rec, act, now):
        raise refuse(f"round {rec.round} is collecting until {rec.deadlines.submit_by} "
                     f"({len(act.submitted)} of {len(rec.participants)} submitted)", 409)
    if not may_close(rec, act, now):
        waiting = sorted(set(act.submitted) - set(act.voted))
        raise refuse(f"round {rec.round} is voting until {rec.deadlines.vote_by}; waiting for "
                     f"{', '.join(waiting)}", 409)


def undecided(rec: RoundRecord, tl: Tally, now: int) -> bool:
    """No result has the quorum yet, the votes still pending could give it one, and the vote window is
    open: a round must not close (fail) while that is so."""
    return tl.winner is None and tl.reachable and now <= rec.deadlines.vote_by


def closing_reason(rec: RoundRecord, act: Activity, now: int) -> Optional[str]:
    """Why the round must fail whatever the votes say (None when the tally decides)."""
    if len(act.submitted) < rec.min_participants:
        return f"only {len(act.submitted)} updates submitted, {rec.min_participants} required"
    if _reveals_overdue(rec, act, now):
        missing = missing_reveals(rec, act, set(act.submitted))
        return (f"{', '.join(missing)} did not reveal their seeds for {', '.join(dropped(rec, act))} "
                f"by {rec.deadlines.reveal_by}")
    return None
