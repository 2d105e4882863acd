"""The protocol's named values: privacy modes, how payloads travel, round states and phases.

Stored round states change only when a round opens or closes, so the transactions in between
(submissions, reveals, votes) write disjoint per-org keys and never conflict. Where a collecting
round stands in between is its :class:`Phase`, derived from those per-org records and the time
(``deadlines.phase``).
"""
from __future__ import annotations

from enum import Enum


class Privacy(str, Enum):
    SECURE = "secure"   # pairwise-masked updates; only the sum is ever visible
    CLEAR = "clear"     # updates visible to member orgs (private collection or node to node); robust rules


class Exchange(str, Enum):
    """How a round's update payloads travel (chosen per job by model size, ``spec.endorsed_max_params``)."""

    ENDORSED = "endorsed"  # through the private collection; endorsers recompute the aggregate bit for bit
    NODES = "nodes"        # node to node over mutual TLS; finalized on a stake quorum of identical hashes


class Transient(str, Enum):
    """Keys of the transient map: bytes an endorser reads but the transaction does not record."""

    UPDATE = "update"                     # submit_update, endorsed exchange: the update's words
    SEEDS = "seeds"                       # reveal_seeds: JSON {left-out org: pairwise seed hex}
    OPTIMIZER_STATE = "optimizer_state"   # finalize_round, endorsed exchange: the base version's optimizer state


class RoundState(str, Enum):
    REGISTRATION = "registration"   # waiting for participants' round keys (round 1, or after a round left too few)
    COLLECTING = "collecting"       # participants fixed: submit, (reveal), vote
    FINALIZED = "finalized"         # a version was written
    FAILED = "failed"               # closed without a version

    @property
    def closed(self) -> bool:
        return self in (RoundState.FINALIZED, RoundState.FAILED)


class Phase(str, Enum):
    """Where a round stands now."""

    REGISTERING = "registering"   # registration state, window open
    STARTING = "starting"         # registration over (everyone in, or the window closed): start_round is due
    SUBMITTING = "submitting"     # collecting, submission window open, updates missing
    REVEALING = "revealing"       # secure mode: survivors reveal seeds for the dropped
    VOTING = "voting"             # candidates can be computed; ballots missing
    CLOSING = "closing"           # finalize_round is due (everyone voted, or the vote window closed)
    CLOSED = "closed"


class JobStatus(str, Enum):
    ACTIVE = "active"
    COMPLETED = "completed"


class Role(str, Enum):
    ADMIN = "admin"
    TRAINER = "trainer"
    AUDITOR = "auditor"


class MemberStatus(str, Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
