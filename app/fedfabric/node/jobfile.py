"""Job files: the YAML an org admin writes, checked field by field and turned into a ledger spec.

The ledger takes no floats, so learning rates, Dirichlet α and DP settings travel as decimal
strings or milli-units. Everything a node needs to train (dataset, partition, architecture and its
arguments, local-training settings) is in the spec's ``hyperparams``: every org reads the same
recipe from the ledger and builds the same initial model, whose hash is lineage version 0.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

DATASETS = ("breast_cancer", "digits", "mnist5k", "credit_synth")
ARCHS = ("logreg", "mlp", "cnn")
PARTITIONS = ("iid", "dirichlet", "by_label")
OPTIMIZERS = ("sgd", "adam")
RULES = ("fedavg", "trimmed_mean", "median", "multi_krum")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

TOP = {"job_id", "dataset", "model", "partition", "rounds", "training", "privacy", "aggregation", "dp", "quorum",
       "min_participants", "windows", "participants", "incentives", "seed", "val_fraction"}


class JobFileError(ValueError):
    """A job file that cannot be used, with the field at fault."""


def _decimal(v: Any, where: str, lo: float, hi: float) -> str:
    if isinstance(v, bool):
        raise JobFileError(f"{where} must be a number, got {v!r}")
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise JobFileError(f"{where} must be a number, got {v!r}") from None
    if not d.is_finite() or not lo <= float(d) <= hi:
        raise JobFileError(f"{where}={v} out of range [{lo}, {hi}]")
    return format(d.normalize(), "f")


def _int(d: dict, k: str, where: str, lo: int, hi: int, default: Any = None) -> int:
    v = d.get(k, default)
    if v is None:
        raise JobFileError(f"{where}.{k} is required")
    if isinstance(v, bool) or not isinstance(v, int):
        raise JobFileError(f"{where}.{k} must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise JobFileError(f"{where}.{k}={v} out of range [{lo}, {hi}]")
    return v


def _section(doc: dict, name: str, allowed: set[str]) -> dict:
    v = doc.get(name, {})
    if v is None:
        v = {}
    if not isinstance(v, dict):
        raise JobFileError(f"{name} must be a mapping")
    extra = set(v) - allowed
    if extra:
        raise JobFileError(f"{name}: unknown field(s) {', '.join(sorted(extra))} (allowed: {', '.join(sorted(allowed))})")
    return v


def _choice(v: Any, where: str, options: tuple[str, ...]) -> str:
    if v not in options:
        raise JobFileError(f"{where} must be one of {', '.join(options)}, got {v!r}")
    return v


@dataclass
class JobFile:
    """A validated job file; ``hyperparams`` is the float-free training recipe for the ledger."""

    job_id: str
    rounds: int
    privacy: str
    aggregation: dict
    dp: dict
    quorum: str
    min_participants: int
    windows: dict
    participants: list[str]
    incentives: dict
    hyperparams: dict
    raw: dict = field(repr=False, default_factory=dict)


def parse_job(doc: Any, default_participants: list[str] | None = None) -> JobFile:
    """Check a job document (already parsed YAML); raises :class:`JobFileError` naming the field."""
    if not isinstance(doc, dict):
        raise JobFileError("a job file must be a YAML mapping")
    extra = set(doc) - TOP
    if extra:
        raise JobFileError(f"unknown field(s) {', '.join(sorted(extra))} (allowed: {', '.join(sorted(TOP))})")
    job_id = doc.get("job_id")
    if not isinstance(job_id, str) or not ID_RE.match(job_id):
        raise JobFileError(f"job_id must match {ID_RE.pattern}, got {job_id!r}")
    dataset = _choice(doc.get("dataset"), "dataset", DATASETS)
    model = _section(doc, "model", {"arch", "kwargs"})
    arch = _choice(model.get("arch", "logreg"), "model.arch", ARCHS)
    kwargs = model.get("kwargs", {}) or {}
    if not isinstance(kwargs, dict) or any(isinstance(v, (bool, float)) or not isinstance(v, int) for v in kwargs.values()):
        raise JobFileError("model.kwargs must map argument names to integers (e.g. hidden: 64)")
    part = _section(doc, "partition", {"kind", "alpha"})
    kind = _choice(part.get("kind", "dirichlet"), "partition.kind", PARTITIONS)
    alpha = _decimal(part.get("alpha", 0.5), "partition.alpha", 0.001, 1000)
    tr = _section(doc, "training", {"epochs", "lr", "batch_size", "optimizer", "mu"})
    seed = _int(doc, "seed", "job", 0, 2**31 - 1, 0)
    participants = doc.get("participants", default_participants)
    if (not isinstance(participants, list) or not participants
            or any(not isinstance(p, str) or not ID_RE.match(p) for p in participants)):
        raise JobFileError("participants must be a non-empty list of org names (e.g. [org1, org2, org3])")
    if len(set(participants)) != len(participants):
        raise JobFileError("participants lists an org twice")
    hyper = {"dataset": dataset, "arch": arch, "arch_kwargs": {k: kwargs[k] for k in sorted(kwargs)},
             "partition": kind, "alpha": alpha, "seed": seed,
             "epochs": _int(tr, "epochs", "training", 1, 1000, 1),
             "lr": _decimal(tr.get("lr", 0.05), "training.lr", 1e-6, 10),
             "batch_size": _int(tr, "batch_size", "training", 1, 100_000, 32),
             "optimizer": _choice(tr.get("optimizer", "sgd"), "training.optimizer", OPTIMIZERS),
             "mu": _decimal(tr.get("mu", 0), "training.mu", 0, 100),
             "val_fraction": _decimal(doc.get("val_fraction", 0.2), "val_fraction", 0.05, 0.5),
             "shards": list(participants)}
    privacy = _choice(doc.get("privacy", "secure"), "privacy", ("secure", "clear"))
    agg = _section(doc, "aggregation", {"rule", "trim", "krum_f", "krum_m"})
    rule = _choice(agg.get("rule", "fedavg"), "aggregation.rule", RULES)
    aggregation = {"rule": rule, **{k: _int(agg, k, "aggregation", 0, 1000) for k in ("trim", "krum_f", "krum_m")
                                    if k in agg}}
    dpd = _section(doc, "dp", {"enabled", "clip_norm", "noise_multiplier", "epsilon_budget", "delta_exp"})
    enabled = dpd.get("enabled", False)
    if not isinstance(enabled, bool):
        raise JobFileError("dp.enabled must be true or false")
    dp: dict[str, Any] = {"enabled": enabled}
    if enabled:
        dp.update({"clip_norm_milli": int(Decimal(_decimal(dpd.get("clip_norm", 1.0), "dp.clip_norm", 0.001, 1e6)) * 1000),
                   "noise_multiplier_milli": int(Decimal(_decimal(dpd.get("noise_multiplier", 1.0),
                                                                  "dp.noise_multiplier", 0, 1e6)) * 1000),
                   "epsilon_budget_milli": int(Decimal(_decimal(dpd.get("epsilon_budget", 10),
                                                                "dp.epsilon_budget", 0.001, 1e6)) * 1000),
                   "delta_exp": _int(dpd, "delta_exp", "dp", 1, 30, 5)})
    quorum = str(doc.get("quorum", "2/3"))
    if not re.fullmatch(r"\d{1,9}/\d{1,9}", quorum) or not 0 < int(quorum.split("/")[0]) <= int(quorum.split("/")[1]):
        raise JobFileError(f"quorum must be a share like 2/3, got {quorum!r}")
    win = _section(doc, "windows", {"registration_s", "submission_s", "approval_s"})
    windows = {k: _int(win, k, "windows", 1, 30 * 24 * 3600, d)
               for k, d in (("registration_s", 60), ("submission_s", 120), ("approval_s", 60))}
    inc = _section(doc, "incentives", {"reward_per_round", "slash_absent", "slash_anomalous", "anomaly_factor"})
    incentives = {k: _int(inc, k, "incentives", 0 if k != "anomaly_factor" else 1, 10**12, d)
                  for k, d in (("reward_per_round", 100), ("slash_absent", 10), ("slash_anomalous", 10),
                               ("anomaly_factor", 3))}
    min_p = _int(doc, "min_participants", "job", 1, 1000, 2 if privacy == "secure" else 1)
    if min_p > len(participants):
        raise JobFileError(f"min_participants={min_p} exceeds the {len(participants)} participants")
    return JobFile(job_id=job_id, rounds=_int(doc, "rounds", "job", 1, 10_000), privacy=privacy,
                   aggregation=aggregation, dp=dp, quorum=quorum, min_participants=min_p, windows=windows,
                   participants=list(participants), incentives=incentives, hyperparams=hyper, raw=doc)


def load_job_file(path: Path | str, default_participants: list[str] | None = None) -> JobFile:
    p = Path(path)
    if not p.is_file():
        raise JobFileError(f"{p}: no such job file")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise JobFileError(f"{p}: not valid YAML ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
    try:
        return parse_job(doc, default_participants)
    except JobFileError as exc:
        raise JobFileError(f"{p}: {exc}") from None


def ledger_spec(job: JobFile, model_facts: dict) -> dict:
    """The ``create_job`` spec: ``model_facts`` has arch_id, arch_hash, initial_hash, shape_digest, num_params."""
    return {"job_id": job.job_id, "model": dict(model_facts), "hyperparams": job.hyperparams, "rounds": job.rounds,
            "privacy": job.privacy, "aggregation": job.aggregation, "dp": job.dp, "quorum": job.quorum,
            "min_participants": job.min_participants, "windows": job.windows, "incentives": job.incentives}
