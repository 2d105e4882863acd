"""A node's view of its job's current round, kept current by the contract's events.

The node reads the ledger once (``round_report``) when it starts or after a gap, then applies each
event's payload: who registered, submitted (with hash, samples and endpoint), revealed, voted, and
the next round's record that comes with every round-closing event. It never polls.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from fedfabric_protocol.deadlines import Activity
from fedfabric_protocol.records import RoundRecord


@dataclass
class RoundView:
    """The current round and what each org did in it so far."""

    rec: RoundRecord
    updates: dict[str, dict] = field(default_factory=dict)     # msp -> {sha256, sample_count, size, endpoint}
    reveals: dict[str, list[str]] = field(default_factory=dict)
    votes: dict[str, dict] = field(default_factory=dict)        # msp -> {approve, result_key}
    registered: set[str] = field(default_factory=set)           # round keys for this round
    next_registered: set[str] = field(default_factory=set)      # round keys already given for the next round

    @property
    def round(self) -> int:
        return self.rec.round

    def activity(self) -> Activity:
        return Activity(frozenset(self.registered), frozenset(self.updates),
                        {m: frozenset(v) for m, v in self.reveals.items()}, frozenset(self.votes))

    @staticmethod
    def from_report(report: dict) -> "RoundView":
        """The view from one ``round_report`` read."""
        rec = RoundRecord.from_dict(report["round"])
        v = RoundView(rec)
        for m, p in report["participants"].items():
            if p.get("update"):
                v.updates[m] = p["update"]
            if p.get("revealed_for"):
                v.reveals[m] = list(p["revealed_for"])
            if p.get("vote"):
                v.votes[m] = p["vote"]
            if p.get("register_tx"):
                v.registered.add(m)
            if p.get("next_round_key"):
                v.next_registered.add(m)
        return v

    def apply(self, name: str, body: dict[str, Any]) -> Optional[RoundRecord]:
        """Take one event of this job into account; returns the record of a round that replaces this one
        (the next round, opened by a closing event) or None."""
        r = body.get("round")
        if name in ("RoundFinalized", "RoundFailed", "JobCompleted") and r == self.round:
            nxt = body.get("next")
            return RoundRecord.from_dict(nxt) if nxt else None
        if name == "RoundStarted" and r == self.round:
            self.rec = RoundRecord.from_dict(body["record"])
        elif name == "Registered":
            if r == self.round:
                self.registered.add(body["msp_id"])
            elif r == self.round + 1:
                self.next_registered.add(body["msp_id"])
        elif name == "UpdateSubmitted" and r == self.round:
            self.updates[body["msp_id"]] = {k: body.get(k) for k in ("sha256", "sample_count", "size", "endpoint")}
        elif name == "SeedsRevealed" and r == self.round:
            self.reveals[body["msp_id"]] = list(body["left_out"])
        elif name == "Voted" and r == self.round:
            self.votes[body["msp_id"]] = {"approve": body["approve"], "result_key": body.get("result_key")}
            if body.get("next_public_key"):
                self.next_registered.add(body["msp_id"])
        return None
