"""Typed records of a round: what a member sends (update meta, ballot) and what the ledger keeps.

Each record has ``from_dict`` and ``to_dict``. The ones a member sends (:class:`UpdateMeta`,
:class:`Ballot`) are validated field by field; the ones the contract writes are read back as
written. Per-org records of one round live under disjoint keys (``reg``, ``upd``, ``reveal``,
``vote`` + job + round + MSP id), so the transactions of one phase never touch each other's keys.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from . import codec
from .errors import refuse
from .fields import HEX64, Fields, check_json
from .spec import MSP_RE, MAX_ORGS
from .states import Exchange, Privacy, RoundState

PUBKEY_RE = HEX64                                   # raw X25519 public key, 64 lowercase hex characters
ENDPOINT_RE = re.compile(r"^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$")
MAX_SAMPLES = (1 << 31) - 1
MAX_METRICS = 64


def canonical(obj: Any) -> bytes:
    """Canonical JSON (sorted keys, compact): everything written to the ledger, everything hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def metrics(value: Any, path: str) -> dict:
    """Up to 64 metrics, each an integer (milli- or micro-units) or a short string."""
    if not isinstance(value, dict) or len(value) > MAX_METRICS:
        raise refuse(f"{path} must be an object of at most {MAX_METRICS} entries")
    for k, v in value.items():
        if not isinstance(k, str) or len(k) > 64:
            raise refuse(f"{path}: metric names are strings of at most 64 characters")
        if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and len(v) > 128) \
                or (isinstance(v, int) and abs(v) > 10**15):
            raise refuse(f"{path}.{k} must be an integer (e.g. milli-units, |x| <= 10^15) or a string of at most "
                         "128 characters")
    return dict(value)


def msp_list(f: Fields, name: str) -> tuple[str, ...]:
    items = f.str_list(name, MSP_RE, MAX_ORGS)
    if len(set(items)) != len(items):
        raise refuse(f"{f.path}.{name} lists an org twice")
    return tuple(sorted(items))


# ---- what a member sends
@dataclass(frozen=True)
class TrainingFacts:
    """When and how an org trained (times are the org's own claim; losses in micro-units)."""

    start: int
    end: int
    epochs: int
    iterations: int
    loss_per_epoch: tuple[int, ...]
    data_fingerprint: str

    @staticmethod
    def from_dict(d: Any, path: str = "meta.training") -> "TrainingFacts":
        f = Fields(d, path, ("start", "end", "epochs", "iterations", "loss_per_epoch", "data_fingerprint"))
        start = f.int("start", 0, 1 << 40)
        epochs = f.int("epochs", 1, 100_000)
        loss = f.d.get("loss_per_epoch")
        if (not isinstance(loss, list) or len(loss) != epochs
                or any(isinstance(x, bool) or not isinstance(x, int) or abs(x) > 10**15 for x in loss)):
            raise refuse(f"{path}.loss_per_epoch must be {epochs} integers (loss in micro-units, one per epoch)")
        return TrainingFacts(start, f.int("end", start, 1 << 40), epochs, f.int("iterations", 1, 1 << 40),
                             tuple(loss), f.hex64("data_fingerprint"))

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "epochs": self.epochs, "iterations": self.iterations,
                "loss_per_epoch": list(self.loss_per_epoch), "data_fingerprint": self.data_fingerprint}


@dataclass(frozen=True)
class UpdateMeta:
    """The public record of one update whose bytes travel privately: hash, size, shape, samples, facts.

    ``endpoint`` (``host:port``) is where the org's node serves the bytes when payloads travel node
    to node; the fetcher trusts it only as far as mutual TLS with the org's identity and the hash go.
    """

    sha256: str
    size: int
    shape_digest: str
    sample_count: int
    training: TrainingFacts
    metrics: Mapping[str, Any] = field(default_factory=dict)
    dp_epsilon_milli: Optional[int] = None
    endpoint: Optional[str] = None
    dtype: str = codec.DTYPE

    FIELDS = ("sha256", "size", "shape_digest", "sample_count", "dtype", "training", "metrics", "dp_epsilon_milli",
              "endpoint")

    @staticmethod
    def from_dict(d: Any, path: str = "meta") -> "UpdateMeta":
        f = Fields(d, path, UpdateMeta.FIELDS)
        check_json(d, path)
        if f.d.get("dtype", codec.DTYPE) != codec.DTYPE:
            raise refuse(f"wrong dtype: {path}.dtype must be {codec.DTYPE}")
        return UpdateMeta(
            sha256=f.hex64("sha256"), size=f.int("size", 0, 1 << 40), shape_digest=f.hex64("shape_digest"),
            sample_count=f.int("sample_count", 1, MAX_SAMPLES),
            training=TrainingFacts.from_dict(f.obj("training"), f"{path}.training"),
            metrics=metrics(f.d.get("metrics", {}), f"{path}.metrics"),
            dp_epsilon_milli=f.int("dp_epsilon_milli", 0, 10**12) if f.has("dp_epsilon_milli") else None,
            endpoint=f.text("endpoint", ENDPOINT_RE) if f.has("endpoint") else None)

    def to_dict(self) -> dict:
        out = {"sha256": self.sha256, "size": self.size, "shape_digest": self.shape_digest,
               "sample_count": self.sample_count, "dtype": self.dtype, "training": self.training.to_dict(),
               "metrics": dict(self.metrics)}
        if self.dp_epsilon_milli is not None:
            out["dp_epsilon_milli"] = self.dp_epsilon_milli
        if self.endpoint is not None:
            out["endpoint"] = self.endpoint
        return out


@dataclass(frozen=True)
class Result:
    """What a voter computed: the aggregate's hash over exactly ``contributors``, the candidate model's
    hash, and the updates the rule flagged; with a server optimizer also the hash of the step the model
    moved by and of the optimizer state after it. Votes are tallied by :attr:`key`."""

    aggregate_hash: str
    model_hash: str
    contributors: tuple[str, ...]
    flagged: tuple[str, ...] = ()
    step_hash: str = ""
    state_hash: str = ""

    @property
    def key(self) -> str:
        return hashlib.sha256(canonical(self.to_dict())).hexdigest()

    def to_dict(self) -> dict:
        out = {"aggregate_hash": self.aggregate_hash, "model_hash": self.model_hash,
               "contributors": list(self.contributors), "flagged": list(self.flagged)}
        if self.step_hash:
            out.update(step_hash=self.step_hash, state_hash=self.state_hash)
        return out

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Result":
        return Result(d["aggregate_hash"], d["model_hash"], tuple(d["contributors"]), tuple(d.get("flagged", ())),
                      d.get("step_hash") or "", d.get("state_hash") or "")


@dataclass(frozen=True)
class Ballot:
    """A vote on round r: approve or not the result this org computed itself, its evaluation metrics,
    and (``next_public_key``) its fresh X25519 key for round r+1, which registers it for that round."""

    approve: bool
    result: Optional[Result]
    metrics: Mapping[str, Any]
    next_public_key: Optional[str] = None

    @staticmethod
    def from_dict(d: Any, path: str = "ballot") -> "Ballot":
        f = Fields(d, path, ("approve", "aggregate_hash", "model_hash", "contributors", "flagged", "metrics",
                             "next_public_key", "step_hash", "state_hash"))
        check_json(d, path)
        approve = f.bool("approve")
        result = None
        if approve or f.has("aggregate_hash"):
            contributors = msp_list(f, "contributors")
            if not contributors:
                raise refuse(f"{path}.contributors must name the updates the aggregate was computed from")
            flagged = msp_list(f, "flagged") if f.has("flagged") else ()
            if not set(flagged) <= set(contributors):
                raise refuse(f"{path}.flagged must be a subset of {path}.contributors")
            stepped = f.has("step_hash") or f.has("state_hash")
            result = Result(f.hex64("aggregate_hash"), f.hex64("model_hash"), contributors, flagged,
                            f.hex64("step_hash") if stepped else "", f.hex64("state_hash") if stepped else "")
        nxt = f.hex64("next_public_key") if f.d.get("next_public_key") is not None else None
        return Ballot(approve, result, metrics(f.d.get("metrics", {}), f"{path}.metrics"), nxt)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"approve": self.approve, "metrics": dict(self.metrics),
                               "next_public_key": self.next_public_key}
        if self.result is not None:
            out.update(self.result.to_dict())
        return out


# ---- what the ledger keeps
@dataclass(frozen=True)
class Deadlines:
    """Transaction-time deadlines (seconds) of a round; those of a later state are 0 until it starts."""

    register_by: int = 0
    submit_by: int = 0
    reveal_by: int = 0
    vote_by: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: Mapping[str, int]) -> "Deadlines":
        return Deadlines(**{k: int(d.get(k, 0)) for k in ("register_by", "submit_by", "reveal_by", "vote_by")})


@dataclass(frozen=True)
class RoundRecord:
    """One round as the ledger keeps it (written when it opens, when it starts collecting, when it closes).

    ``stakes`` is the electorate: the job's participants that were active with stake when the round
    opened, with that stake; it weighs the vote and draws the leader. ``participants`` (with their
    ``public_keys`` in secure mode) are fixed when collecting starts. ``outcome`` is set on close.
    """

    job_id: str
    round: int
    state: RoundState
    privacy: Privacy
    exchange: Exchange
    leader: str
    leader_draw: Mapping[str, Any]
    base_version: int
    base_hash: str
    stakes: Mapping[str, int]
    quorum: tuple[int, int]
    min_participants: int
    deadlines: Deadlines
    participants: tuple[str, ...] = ()
    public_keys: Mapping[str, str] = field(default_factory=dict)
    opened_at: int = 0
    opened_tx: str = ""
    started_at: int = 0
    started_tx: str = ""
    outcome: Optional[Mapping[str, Any]] = None
    base_state_hash: str = ""     # jobs with a server optimizer: its state after the base version

    def to_dict(self) -> dict:
        extra = {"base_state_hash": self.base_state_hash} if self.base_state_hash else {}
        return {**extra, "job_id": self.job_id, "round": self.round, "state": self.state.value, "privacy": self.privacy.value,
                "exchange": self.exchange.value, "leader": self.leader, "leader_draw": dict(self.leader_draw),
                "base_version": self.base_version, "base_hash": self.base_hash, "stakes": dict(self.stakes),
                "quorum": list(self.quorum), "min_participants": self.min_participants,
                "deadlines": self.deadlines.to_dict(), "participants": list(self.participants),
                "public_keys": dict(self.public_keys), "opened_at": self.opened_at, "opened_tx": self.opened_tx,
                "started_at": self.started_at, "started_tx": self.started_tx,
                "outcome": None if self.outcome is None else dict(self.outcome)}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "RoundRecord":
        return RoundRecord(
            job_id=d["job_id"], round=int(d["round"]), state=RoundState(d["state"]), privacy=Privacy(d["privacy"]),
            exchange=Exchange(d["exchange"]), leader=d["leader"], leader_draw=d["leader_draw"],
            base_version=int(d["base_version"]), base_hash=d["base_hash"], stakes=dict(d["stakes"]),
            quorum=(int(d["quorum"][0]), int(d["quorum"][1])), min_participants=int(d["min_participants"]),
            deadlines=Deadlines.from_dict(d["deadlines"]), participants=tuple(d.get("participants", ())),
            public_keys=dict(d.get("public_keys", {})), opened_at=int(d.get("opened_at", 0)),
            opened_tx=d.get("opened_tx", ""), started_at=int(d.get("started_at", 0)),
            started_tx=d.get("started_tx", ""), outcome=d.get("outcome"), base_state_hash=d.get("base_state_hash", ""))

    @property
    def electorate(self) -> list[str]:
        return sorted(m for m, s in self.stakes.items() if s > 0)

    def is_participant(self, msp: str) -> bool:
        return msp in self.participants
