"""The job spec: one typed record, validated the same way by the contract and by the job-file parser.

``JobSpec.from_dict`` is the validator: every field typed and bounded, unknown fields refused, no
floats (decimals travel as strings, DP settings in milli-units), the rule and its parameters from
the rule registry, feasibility checked (every round that reaches ``min_participants`` updates can
apply the rule). ``to_dict`` is the canonical form the ledger stores; ``from_dict(to_dict())`` gives
the same spec back, so what ``get_job`` returns is accepted again by ``create_job``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from . import codec
from .errors import refuse
from .fields import ID_RE, Fields, check_json, fraction
from .optimizers import ServerOptimizer, optimizer_from_dict
from .rules import Rule, rule_from_dict
from .states import Exchange, MemberStatus, Privacy

MAX_PARAMS = 1 << 26
MAX_WINDOW_S = 30 * 24 * 3600
MIN_DEFAULT_REVEAL_S = 60
DEFAULT_ENDORSED_MAX_PARAMS = 1_000_000
MAX_ORGS = 256

DATASETS = ("breast_cancer", "credit_synth", "digits", "mnist5k")
ARCH_KWARGS = {"logreg": (), "mlp": ("hidden",), "cnn": ("channels",)}   # architecture -> its integer arguments
PARTITIONS = ("iid", "dirichlet", "by_label")
OPTIMIZERS = ("sgd", "adam")
MSP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelSpec:
    """The architecture and version 0 of the lineage (hashes computed by the job's creator, checked by every node)."""

    arch_id: str
    arch_hash: str
    initial_hash: str
    shape_digest: str
    num_params: int

    @staticmethod
    def from_dict(d: Any, path: str = "spec.model") -> "ModelSpec":
        f = Fields(d, path, ("arch_id", "arch_hash", "initial_hash", "shape_digest", "num_params"))
        return ModelSpec(f.text("arch_id"), f.hex64("arch_hash"), f.hex64("initial_hash"), f.hex64("shape_digest"),
                         f.int("num_params", 1, MAX_PARAMS))

    def to_dict(self) -> dict:
        return {"arch_id": self.arch_id, "arch_hash": self.arch_hash, "initial_hash": self.initial_hash,
                "shape_digest": self.shape_digest, "num_params": self.num_params}


@dataclass(frozen=True)
class Hyperparams:
    """The training recipe every org follows: data, partition, architecture, local training.

    ``shards`` lists the participants' MSP ids in the order that assigns the partition's shards.
    Learning rate, FedProx ``mu``, Dirichlet ``alpha`` and the validation share are decimal strings.
    """

    dataset: str
    arch: str
    arch_kwargs: Mapping[str, int]
    partition: str
    alpha: str
    seed: int
    epochs: int
    lr: str
    batch_size: int
    optimizer: str
    mu: str
    val_fraction: str
    shards: tuple[str, ...]

    FIELDS = ("dataset", "arch", "arch_kwargs", "partition", "alpha", "seed", "epochs", "lr", "batch_size",
              "optimizer", "mu", "val_fraction", "shards")

    @staticmethod
    def from_dict(d: Any, path: str = "spec.hyperparams") -> "Hyperparams":
        f = Fields(d, path, Hyperparams.FIELDS)
        arch = f.choice("arch", ARCH_KWARGS)
        kw = Fields(f.obj("arch_kwargs", {}), f"{path}.arch_kwargs", ARCH_KWARGS[arch])
        kwargs = {k: kw.int(k, 1, 1 << 20) for k in sorted(kw.d)}
        shards = f.str_list("shards", MSP_RE, MAX_ORGS)
        if not shards:
            raise refuse(f"{path}.shards must name at least one org")
        if len(set(shards)) != len(shards):
            raise refuse(f"{path}.shards lists an org twice")
        return Hyperparams(
            dataset=f.choice("dataset", DATASETS), arch=arch, arch_kwargs=kwargs,
            partition=f.choice("partition", PARTITIONS, "dirichlet"), alpha=f.decimal("alpha", "0.001", "1000", "0.5"),
            seed=f.int("seed", 0, 2**31 - 1, 0), epochs=f.int("epochs", 1, 1000, 1),
            lr=f.decimal("lr", "0.000001", "10", "0.05"), batch_size=f.int("batch_size", 1, 100_000, 32),
            optimizer=f.choice("optimizer", OPTIMIZERS, "sgd"), mu=f.decimal("mu", "0", "100", "0"),
            val_fraction=f.decimal("val_fraction", "0.05", "0.5", "0.2"), shards=tuple(shards))

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "arch": self.arch, "arch_kwargs": dict(sorted(self.arch_kwargs.items())),
                "partition": self.partition, "alpha": self.alpha, "seed": self.seed, "epochs": self.epochs,
                "lr": self.lr, "batch_size": self.batch_size, "optimizer": self.optimizer, "mu": self.mu,
                "val_fraction": self.val_fraction, "shards": list(self.shards)}


@dataclass(frozen=True)
class Windows:
    """Seconds each phase may take: registration, submission, seed reveal (after submission), voting."""

    registration_s: int
    submission_s: int
    reveal_s: int
    approval_s: int

    @staticmethod
    def from_dict(d: Any, path: str = "spec.windows") -> "Windows":
        f = Fields(d, path, ("registration_s", "submission_s", "reveal_s", "approval_s"))
        reg, sub, app = (f.int(n, 1, MAX_WINDOW_S) for n in ("registration_s", "submission_s", "approval_s"))
        reveal = f.int("reveal_s", 1, MAX_WINDOW_S, min(MAX_WINDOW_S, max(sub, MIN_DEFAULT_REVEAL_S)))
        return Windows(reg, sub, reveal, app)

    def to_dict(self) -> dict:
        return {"registration_s": self.registration_s, "submission_s": self.submission_s,
                "reveal_s": self.reveal_s, "approval_s": self.approval_s}


@dataclass(frozen=True)
class DPSpec:
    """Differential privacy: clip to ``clip_norm_milli``/1000, Gaussian noise, ε accounted per round."""

    enabled: bool = False
    clip_norm_milli: int = 0
    noise_multiplier_milli: int = 0
    epsilon_budget_milli: int = 0
    delta_exp: int = 5

    @staticmethod
    def from_dict(d: Any, path: str = "spec.dp") -> "DPSpec":
        f = Fields(d, path, ("enabled", "clip_norm_milli", "noise_multiplier_milli", "epsilon_budget_milli",
                             "delta_exp"))
        if not f.bool("enabled", False):
            if set(f.d) - {"enabled"}:
                raise refuse(f"{path}: DP settings given but dp.enabled is false")
            return DPSpec()
        return DPSpec(True, f.int("clip_norm_milli", 1, 10**9), f.int("noise_multiplier_milli", 0, 10**9),
                      f.int("epsilon_budget_milli", 1, 10**9), f.int("delta_exp", 1, 30, 5))

    def to_dict(self) -> dict:
        if not self.enabled:
            return {"enabled": False}
        return {"enabled": True, "clip_norm_milli": self.clip_norm_milli,
                "noise_multiplier_milli": self.noise_multiplier_milli,
                "epsilon_budget_milli": self.epsilon_budget_milli, "delta_exp": self.delta_exp}


@dataclass(frozen=True)
class Incentives:
    """Reward pool per finalized round (balance) and stake slashed per offence."""

    reward_per_round: int = 0
    slash_absent: int = 0
    slash_anomalous: int = 0
    slash_no_reveal: int = 0
    anomaly_factor: int = 3

    @staticmethod
    def from_dict(d: Any, path: str = "spec.incentives") -> "Incentives":
        f = Fields(d, path, ("reward_per_round", "slash_absent", "slash_anomalous", "slash_no_reveal",
                             "anomaly_factor"))
        absent = f.int("slash_absent", 0, 10**12, 0)
        return Incentives(f.int("reward_per_round", 0, 10**12, 0), absent, f.int("slash_anomalous", 0, 10**12, 0),
                          f.int("slash_no_reveal", 0, 10**12, absent), f.int("anomaly_factor", 1, 1000, 3))

    def to_dict(self) -> dict:
        return {"reward_per_round": self.reward_per_round, "slash_absent": self.slash_absent,
                "slash_anomalous": self.slash_anomalous, "slash_no_reveal": self.slash_no_reveal,
                "anomaly_factor": self.anomaly_factor}


TOP = ("job_id", "model", "hyperparams", "rounds", "privacy", "aggregation", "dp", "quorum", "min_participants",
       "participants", "windows", "max_abs", "incentives", "frac_bits", "endorsed_max_params", "server_optimizer")


@dataclass(frozen=True)
class JobSpec:
    """Everything a training job is: recipe, model, rounds, privacy, rule (and the server optimizer after it),
    DP, quorum, who, windows, incentives."""

    job_id: str
    model: ModelSpec
    hyperparams: Hyperparams
    rounds: int
    privacy: Privacy
    aggregation: Rule
    quorum: tuple[int, int]
    min_participants: int
    participants: tuple[str, ...]
    windows: Windows
    dp: DPSpec = field(default_factory=DPSpec)
    incentives: Incentives = field(default_factory=Incentives)
    max_abs: int = codec.INT32_MAX
    frac_bits: int = codec.FRAC_BITS
    endorsed_max_params: int = DEFAULT_ENDORSED_MAX_PARAMS
    server_optimizer: Optional[ServerOptimizer] = None

    @staticmethod
    def from_dict(d: Any, default_participants: Optional[list[str]] = None) -> "JobSpec":
        """The spec in ``d`` or a :class:`ProtocolError` naming the first bad field. Without
        ``spec.participants`` the ``default_participants`` take part (the contract passes its active
        members with stake)."""
        f = Fields(d, "spec", TOP)
        check_json(d, "spec")
        privacy = Privacy(f.choice("privacy", [p.value for p in Privacy]))
        rule = rule_from_dict(f.obj("aggregation"))
        min_p = f.int("min_participants", 1, MAX_ORGS)
        if f.has("participants"):
            parts = f.str_list("participants", MSP_RE, MAX_ORGS)
        elif default_participants is not None:
            parts = list(default_participants)
        else:
            raise refuse("spec.participants is required")
        if len(set(parts)) != len(parts):
            dup = sorted({p for p in parts if parts.count(p) > 1})
            raise refuse(f"spec.participants lists {', '.join(dup)} more than once")
        if len(parts) < min_p:
            raise refuse(f"spec.participants has {len(parts)} orgs, fewer than spec.min_participants={min_p}")
        if privacy is Privacy.SECURE and min_p < 2:
            raise refuse(f"spec.min_participants={min_p} is too small: secure mode needs at least 2 "
                         "(a lone masked update is the update)")
        rule.check_feasible(min_p, privacy)
        hyper = Hyperparams.from_dict(f.obj("hyperparams"))
        if sorted(hyper.shards) != sorted(parts):
            raise refuse(f"spec.hyperparams.shards ({', '.join(hyper.shards)}) must name exactly the participants "
                         f"({', '.join(sorted(parts))})")
        return JobSpec(
            job_id=f.text("job_id", ID_RE), model=ModelSpec.from_dict(f.obj("model")), hyperparams=hyper,
            rounds=f.int("rounds", 1, 10_000), privacy=privacy, aggregation=rule,
            quorum=fraction(f.d.get("quorum", "2/3"), "spec.quorum"), min_participants=min_p,
            participants=tuple(sorted(parts)), windows=Windows.from_dict(f.obj("windows")),
            dp=DPSpec.from_dict(f.obj("dp", {})), incentives=Incentives.from_dict(f.obj("incentives", {})),
            max_abs=f.int("max_abs", 1, codec.INT32_MAX, codec.INT32_MAX),
            frac_bits=f.int("frac_bits", codec.FRAC_BITS, codec.FRAC_BITS, codec.FRAC_BITS),
            endorsed_max_params=f.int("endorsed_max_params", 0, MAX_PARAMS, DEFAULT_ENDORSED_MAX_PARAMS),
            server_optimizer=optimizer_from_dict(f.d["server_optimizer"]) if f.has("server_optimizer") else None)

    def to_dict(self) -> dict:
        return {"job_id": self.job_id, "model": self.model.to_dict(), "hyperparams": self.hyperparams.to_dict(),
                "rounds": self.rounds, "privacy": self.privacy.value, "aggregation": self.aggregation.to_dict(),
                "dp": self.dp.to_dict(), "quorum": list(self.quorum), "min_participants": self.min_participants,
                "participants": list(self.participants), "windows": self.windows.to_dict(), "max_abs": self.max_abs,
                "incentives": self.incentives.to_dict(), "frac_bits": self.frac_bits,
                "endorsed_max_params": self.endorsed_max_params,
                **({"server_optimizer": self.server_optimizer.to_dict()} if self.server_optimizer else {})}

    @property
    def exchange(self) -> Exchange:
        """How payloads travel: through the private collection up to ``endorsed_max_params``, node to node above."""
        return Exchange.ENDORSED if self.model.num_params <= self.endorsed_max_params else Exchange.NODES

    def check_members(self, status: Mapping[str, str]) -> None:
        """Every participant is an active member (``status``: MSP id -> member status)."""
        for p in self.participants:
            if p not in status:
                raise refuse(f"spec.participants: {p} is not a member of the consortium")
            if status[p] != MemberStatus.ACTIVE.value:
                raise refuse(f"spec.participants: {p} is {status[p]}, not active")
