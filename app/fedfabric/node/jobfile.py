"""Job files: the YAML an org admin writes, translated into the protocol's job spec.

The file is friendlier than the spec (floats for learning rates and DP settings, org names, a few
defaults), but it is only *translated* here: every check is the protocol's own validator
(``JobSpec.from_dict``), the same code the contract runs, with its messages mapped back to the
file's field names (``training.lr`` instead of ``spec.hyperparams.lr``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Optional

import yaml

from fedfabric_protocol.errors import ProtocolError, show
from fedfabric_protocol.spec import JobSpec

TOP = ("job_id", "dataset", "model", "partition", "rounds", "training", "privacy", "aggregation", "dp", "quorum",
       "min_participants", "windows", "participants", "incentives", "seed", "val_fraction", "endorsed_max_params",
       "server_optimizer")
SECTIONS = {"model": ("arch", "kwargs", "parameters", "client"), "partition": ("kind", "alpha"),
            "training": ("epochs", "lr", "batch_size", "optimizer", "mu"),
            "dp": ("enabled", "clip_norm", "noise_multiplier", "epsilon_budget", "delta_exp")}
DEFAULT_WINDOWS = {"registration_s": 60, "submission_s": 120, "approval_s": 60}
DEFAULT_INCENTIVES = {"reward_per_round": 100, "slash_absent": 10, "slash_anomalous": 10, "anomaly_factor": 3}
MAX_FILE_BYTES = 1 << 20
PLACEHOLDER = "0" * 64
# model.parameters: "job" (built from model.arch, the default) or "client" (version 0 and the shapes from the
# Flower client model.client names, see fl.flower). The protocol's hyper-parameters still require one of its
# architectures: a client-parameter job records CLIENT_ARCH_PLACEHOLDER there, and the spec's model section
# (arch_id "flower") says where the model comes from.
PARAMETER_SOURCES = ("job", "client")
CLIENT_ARCH_PLACEHOLDER = "logreg"
CLIENT_REF_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# spec field -> job-file field, longest first, for the validator's messages
_PATHS = [("spec.hyperparams.arch_kwargs", "model.kwargs"), ("spec.hyperparams.arch", "model.arch"),
          ("spec.hyperparams.partition", "partition.kind"), ("spec.hyperparams.alpha", "partition.alpha"),
          ("spec.hyperparams.dataset", "dataset"), ("spec.hyperparams.seed", "seed"),
          ("spec.hyperparams.val_fraction", "val_fraction"), ("spec.hyperparams.shards", "participants"),
          ("spec.hyperparams.", "training."), ("spec.dp.clip_norm_milli", "dp.clip_norm (in thousandths)"),
          ("spec.dp.noise_multiplier_milli", "dp.noise_multiplier (in thousandths)"),
          ("spec.dp.epsilon_budget_milli", "dp.epsilon_budget (in thousandths)"), ("spec.", ""), ("spec:", "job:")]


class JobFileError(ValueError):
    """A job file that cannot be used, with the field at fault."""


def file_message(exc: ProtocolError) -> str:
    """The validator's message in the job file's vocabulary."""
    text = exc.message
    for spec_path, file_path in _PATHS:
        text = text.replace(spec_path, file_path)
    return text


def _number(v: Any, where: str) -> Any:
    """A YAML number as the decimal string the spec wants (anything else is left for the validator)."""
    if isinstance(v, float):
        return format(Decimal(repr(v)), "f")
    return v


def _milli(v: Any, where: str) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return v
    try:
        d = Decimal(repr(v) if isinstance(v, float) else str(v)) * 1000
    except InvalidOperation:
        raise JobFileError(f"{where} must be a number, got {show(v, 40)}") from None
    if not d.is_finite() or d != d.to_integral_value():
        raise JobFileError(f"{where}={v} must be a multiple of 0.001")
    return int(d)


def _section(doc: dict, name: str) -> dict:
    v = doc.get(name) or {}
    if not isinstance(v, dict):
        raise JobFileError(f"{name} must be a mapping")
    extra = sorted(str(k) for k in v if k not in SECTIONS[name])
    if extra:
        raise JobFileError(f"{name}: unknown field(s) {', '.join(extra)} (allowed: {', '.join(SECTIONS[name])})")
    return v


@dataclass
class JobFile:
    """A translated job file: the spec draft (participants still org names, model facts not yet built)."""

    job_id: str
    participants: list[str]
    draft: dict
    flower_client: Optional[str] = None   # model.parameters: client -- the factory version 0 is taken from

    @property
    def privacy(self) -> str:
        """The job's privacy mode (secure or clear)."""
        return self.draft["privacy"]

    def renamed(self, job_id: str) -> "JobFile":
        """The same job under another id (checked like any job id when the spec is built)."""
        return JobFile(job_id, list(self.participants), {**self.draft, "job_id": job_id}, self.flower_client)


def model_source(doc: dict) -> Optional[str]:
    """The Flower client factory (``package.module:factory``) a job's model comes from, None for the job's own
    architecture; :class:`JobFileError` for a model section that mixes the two."""
    model = _section(doc, "model")
    source = model.get("parameters", "job")
    if source not in PARAMETER_SOURCES:
        raise JobFileError(f"model.parameters must be one of {', '.join(PARAMETER_SOURCES)}, got {show(source, 40)}")
    ref = model.get("client")
    if source == "job":
        if ref is not None:
            raise JobFileError("model.client names a Flower client: set model.parameters: client to take the model "
                               "from it")
        return None
    if not isinstance(ref, str) or not CLIENT_REF_RE.match(ref):
        raise JobFileError(f"model.parameters: client needs model.client, the Flower client factory as "
                           f"package.module:factory, got {show(ref, 80)}")
    extra = [k for k in ("arch", "kwargs") if k in model]
    if extra:
        raise JobFileError(f"model.{extra[0]}: the model of a parameters: client job is the Flower client's; "
                           "nothing is built from model.arch or model.kwargs")
    return ref


def translate(doc: Any, default_participants: Optional[list[str]] = None) -> dict:
    """The spec draft of a job document (already parsed YAML)."""
    if not isinstance(doc, dict):
        raise JobFileError("a job file must be a YAML mapping")
    extra = sorted(str(k) for k in doc if k not in TOP)
    if extra:
        raise JobFileError(f"unknown field(s) {', '.join(extra)} (allowed: {', '.join(sorted(TOP))})")
    model, part, tr, dpd = (_section(doc, n) for n in ("model", "partition", "training", "dp"))
    if model_source(doc) is not None:
        model = {"arch": CLIENT_ARCH_PLACEHOLDER}
    participants = doc.get("participants", default_participants)
    if not isinstance(participants, list) or not participants:
        raise JobFileError("participants must be a non-empty list of org names (e.g. [org1, org2, org3])")
    privacy = doc.get("privacy", "secure")
    hyper = {"dataset": doc.get("dataset"), "arch": model.get("arch", "logreg"), "arch_kwargs": model.get("kwargs") or {},
             "partition": part.get("kind", "dirichlet"), "alpha": _number(part.get("alpha", 0.5), "partition.alpha"),
             "seed": doc.get("seed", 0), "val_fraction": _number(doc.get("val_fraction", 0.2), "val_fraction"),
             "epochs": tr.get("epochs", 1), "lr": _number(tr.get("lr", 0.05), "training.lr"),
             "batch_size": tr.get("batch_size", 32), "optimizer": tr.get("optimizer", "sgd"),
             "mu": _number(tr.get("mu", 0), "training.mu"), "shards": list(participants)}
    dp: dict[str, Any] = {"enabled": dpd.get("enabled", False)}
    if dp["enabled"] is True:
        dp.update({"clip_norm_milli": _milli(dpd.get("clip_norm", 1.0), "dp.clip_norm"),
                   "noise_multiplier_milli": _milli(dpd.get("noise_multiplier", 1.0), "dp.noise_multiplier"),
                   "epsilon_budget_milli": _milli(dpd.get("epsilon_budget", 10), "dp.epsilon_budget"),
                   "delta_exp": dpd.get("delta_exp", 5)})
    draft = {"job_id": doc.get("job_id"), "hyperparams": hyper, "rounds": doc.get("rounds"), "privacy": privacy,
             "aggregation": doc.get("aggregation") or {"rule": "fedavg"}, "dp": dp,
             "quorum": doc.get("quorum", "2/3"),
             "min_participants": doc.get("min_participants", 2 if privacy == "secure" else 1),
             "participants": list(participants), "windows": {**DEFAULT_WINDOWS, **(doc.get("windows") or {})},
             "incentives": {**DEFAULT_INCENTIVES, **(doc.get("incentives") or {})}}
    if "endorsed_max_params" in doc:
        draft["endorsed_max_params"] = doc["endorsed_max_params"]
    so = doc.get("server_optimizer")
    if so is not None:   # e.g. {kind: adam, lr: 0.01, beta1: 0.9}: the coefficients as decimal strings
        draft["server_optimizer"] = ({k: _number(v, f"server_optimizer.{k}") for k, v in so.items()}
                                     if isinstance(so, dict) else so)
    return draft


def validate(spec: dict) -> JobSpec:
    """``JobSpec.from_dict`` with its message in the job file's words (:class:`JobFileError`)."""
    try:
        return JobSpec.from_dict(spec)
    except ProtocolError as exc:
        raise JobFileError(file_message(exc)) from None


def parse_job(doc: Any, default_participants: Optional[list[str]] = None) -> JobFile:
    """Translate and check a job document: every field the spec would refuse is named now."""
    draft = translate(doc, default_participants)
    placeholder = {"arch_id": "x", "arch_hash": PLACEHOLDER, "initial_hash": PLACEHOLDER,
                   "shape_digest": PLACEHOLDER, "num_params": 1}
    validate({**draft, "model": placeholder})
    return JobFile(job_id=draft["job_id"], participants=list(draft["participants"]), draft=draft,
                   flower_client=model_source(doc))


def load_job_file(path: Path | str, default_participants: Optional[list[str]] = None) -> JobFile:
    """Read and check a job file; any problem (missing, binary, not YAML, YAML tags, wrong fields) is one
    :class:`JobFileError` line naming the file."""
    p = Path(path)
    if not p.is_file():
        raise JobFileError(f"{p}: no such job file")
    raw = p.read_bytes()
    if len(raw) > MAX_FILE_BYTES:
        raise JobFileError(f"{p}: {len(raw)} bytes; a job file is at most {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JobFileError(f"{p}: not a text file (not valid UTF-8)") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise JobFileError(f"{p}: not valid YAML ({exc.__class__.__name__}: {first[:200]})") from None
    except RecursionError:
        raise JobFileError(f"{p}: nested too deeply") from None
    try:
        return parse_job(doc, default_participants)
    except JobFileError as exc:
        raise JobFileError(f"{p}: {exc}") from None
