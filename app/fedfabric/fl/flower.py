"""A Flower client as an org's trainer: ``fedfabric node --flower-client package.module:factory``.

The client is the org's own, unchanged: a ``flwr.client.NumPyClient`` (or any ``flwr.client.Client``,
e.g. what ``NumPyClient.to_client()`` returns), built by the factory its Flower app already has -- the
``client_fn(context)`` a ``ClientApp`` is made from (a factory without arguments works too). The node
drives it through flwr's own ``Client`` interface (``get_parameters``, ``fit``, ``evaluate`` with
flwr's ``Parameters``), as a Flower SuperNode would; everything that is the node's -- DP, the
fixed-point encoding, the masks, submission, computing and verifying the aggregate, voting -- stays
the node's (:class:`fedfabric.fl.recipe.Trainer`).

What the client sees, in Flower's vocabulary:

* ``context.node_config``: ``partition-id`` (the org's position in the job's participants, 0-based)
  and ``num-partitions`` (how many participants) -- the keys Flower's simulation gives a client;
* ``context.run_config``: the job's facts (``job-id``, ``rounds``, ``dataset``, ``partition``, ``alpha``,
  ``seed``, ``val-fraction``, ``local-epochs``, ``lr``, ``batch-size``);
* ``fit`` config: ``server_round``, ``local_epochs``, ``lr``, ``batch_size``, ``optimizer``,
  ``proximal_mu`` and ``seed`` (the job's training section, as a strategy's ``on_fit_config_fn`` would);
* ``evaluate`` config: ``server_round``.

What the node reads back: ``fit``'s parameters (the update is new - base) and ``num_examples`` (the
update's sample count and its weight in secure mode); from its metrics, when present, ``train_loss``,
``iterations`` and ``data_fingerprint`` (64 hex characters, recorded as the update's data fingerprint;
without it the node records a digest of the org, the client's class and the sample count -- a client
that wants its data auditable reports its own). The record needs one loss per epoch; a client reports
one for the whole ``fit`` at most, so the earlier epochs (and a loss not reported) are -1 micro-units. ``evaluate``'s loss, its
``num_examples`` and ``accuracy`` in its metrics judge a candidate: approved unless its loss is not
finite or (when the client reports accuracy) it loses more than ``MAX_ACCURACY_DROP`` of accuracy
against the round's base.

The model is the client's: a job whose ``model`` section says ``parameters: client`` takes version 0
from the job creator's client (``get_parameters``), records ``arch_id`` :data:`FLOWER_ARCH`, the
digest of the arrays' shapes and the hash of those parameters as float32, like any job. The list of
arrays travels as one flat float32 vector (the arrays in order, each C-ordered) and is given back to
the client in its own shapes and dtypes. Every org's client must start from the same parameters
(seeded), since version 0 is checked by hash on every node.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from fedfabric_protocol.spec import Hyperparams, JobSpec

from ..artifacts import model_hash
from .models import architecture_hash, shape_digest
from .recipe import MAX_ACCURACY_DROP, Judgement, LocalUpdate, Trainer
from .task import FLOWER_ARCH, TaskError

if TYPE_CHECKING:
    from flwr.client import Client

INSTALL_HINT = "install the extra: pip install -e '.[flower]'"
MAX_LOSS = 1e6                  # losses are recorded in micro-units; larger ones are recorded as this


class FlowerClientError(TaskError):
    """The Flower client cannot be loaded, or answered something the node cannot use."""


def _flwr() -> Any:
    """flwr's modules the node uses (:class:`FlowerClientError` with the install hint if flwr is missing)."""
    try:
        import flwr.app
        import flwr.client
        import flwr.common
    except ImportError as exc:
        raise FlowerClientError(f"flwr is not installed ({exc.name or exc}); {INSTALL_HINT}") from None
    return flwr


# ---- parameters: a list of arrays <-> the protocol's flat float32 vector
@dataclass(frozen=True)
class ArrayLayout:
    """Shapes and dtypes of a client's list of arrays, in order."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]

    @staticmethod
    def of(arrays: list[np.ndarray]) -> "ArrayLayout":
        """The layout of ``arrays``; numeric arrays only."""
        if not isinstance(arrays, list) or not arrays:
            raise FlowerClientError(f"the client's parameters must be a non-empty list of NumPy arrays, got "
                                    f"{type(arrays).__name__}{' (empty)' if isinstance(arrays, list) else ''}")
        for i, a in enumerate(arrays):
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiub":
                raise FlowerClientError(f"parameter array {i} is {getattr(a, 'dtype', type(a).__name__)}, not a "
                                        "numeric NumPy array")
        return ArrayLayout(tuple(tuple(int(d) for d in a.shape) for a in arrays), tuple(a.dtype.str for a in arrays))

    @property
    def size(self) -> int:
        """Number of values over all arrays."""
        return int(sum(math.prod(s) for s in self.shapes))

    @property
    def digest(self) -> str:
        """The spec's ``shape_digest``: arrays named by their position."""
        return shape_digest([(str(i), s) for i, s in enumerate(self.shapes)])

    @property
    def arch_hash(self) -> str:
        """The spec's ``arch_hash``: :data:`FLOWER_ARCH` and every array's shape and dtype."""
        return architecture_hash(FLOWER_ARCH, {"arrays": [[list(s), d] for s, d in zip(self.shapes, self.dtypes)]})

    def flatten(self, arrays: list[np.ndarray], what: str = "parameters") -> np.ndarray:
        """``arrays`` (which must have this layout's shapes) as one float32 vector."""
        if not isinstance(arrays, list) or len(arrays) != len(self.shapes):
            n = len(arrays) if isinstance(arrays, list) else type(arrays).__name__
            raise FlowerClientError(f"the client's {what}: {n} arrays where the job's model has {len(self.shapes)}")
        for i, (a, s) in enumerate(zip(arrays, self.shapes)):
            if not isinstance(a, np.ndarray) or tuple(a.shape) != s:
                raise FlowerClientError(f"the client's {what}: array {i} has shape "
                                        f"{getattr(a, 'shape', type(a).__name__)}, the job's model {s}")
        return np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays]).astype(np.float32, copy=False)

    def unflatten(self, vec: np.ndarray) -> list[np.ndarray]:
        """The flat vector as the client's arrays, in their shapes and dtypes (integers rounded)."""
        vec = np.asarray(vec, np.float32)
        if vec.size != self.size:
            raise ValueError(f"vector has {vec.size} values, the client's arrays {self.size}")
        out, i = [], 0
        for s, d in zip(self.shapes, self.dtypes):
            n = math.prod(s)
            part = vec[i:i + n].reshape(s)
            dt = np.dtype(d)
            out.append(np.rint(part).astype(dt) if dt.kind in "iub" else part.astype(dt))
            i += n
        return out


# ---- loading the client
def load_factory(ref: str) -> Callable[..., Any]:
    """The callable ``package.module:name`` names (``name`` may be dotted)."""
    module, sep, attr = (ref or "").partition(":")
    if not sep or not module or not attr:
        raise FlowerClientError(f"--flower-client must be package.module:factory, got {ref!r}")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise FlowerClientError(f"cannot import {module!r} for the Flower client ({exc}); is it installed or on "
                                "PYTHONPATH?") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FlowerClientError(f"{module} has no {attr!r} (the Flower client factory)")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FlowerClientError(f"{ref} is a {type(obj).__name__}, not a callable that builds a Flower client")
    return obj


def _run_id(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1   # 63 bits, stable


def context_for(job_id: str, rounds: int, hyper: Hyperparams, position: int) -> Any:
    """The flwr ``Context`` the factory of the participant at ``position`` (in ``hyper.shards``) gets."""
    flwr = _flwr()
    node_config = {"partition-id": int(position), "num-partitions": len(hyper.shards)}
    run_config = {"job-id": job_id, "rounds": int(rounds), "dataset": hyper.dataset, "partition": hyper.partition,
                  "alpha": float(hyper.alpha), "seed": int(hyper.seed), "val-fraction": float(hyper.val_fraction),
                  "local-epochs": int(hyper.epochs), "lr": float(hyper.lr), "batch-size": int(hyper.batch_size)}
    return flwr.app.Context(run_id=_run_id(job_id), node_id=_run_id(f"{job_id}/{hyper.shards[position]}"),
                            node_config=node_config, state=flwr.app.RecordDict(), run_config=run_config)


def _takes_context(factory: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def build_client(ref: str, context: Any) -> "Client":
    """Call the factory ``ref`` names (with ``context`` if it takes an argument) and return the flwr ``Client``
    to drive: a ``NumPyClient`` is wrapped by its own ``to_client()``."""
    flwr = _flwr()
    factory = load_factory(ref)
    obj = factory(context) if _takes_context(factory) else factory()
    if isinstance(obj, flwr.client.NumPyClient):
        return obj.to_client()
    if isinstance(obj, flwr.client.Client):
        return obj
    raise FlowerClientError(f"{ref} returned a {type(obj).__name__}, not a flwr NumPyClient or Client")


# ---- calling it
def _ok(res: Any, what: str) -> Any:
    flwr = _flwr()
    status = getattr(res, "status", None)
    if status is None or status.code != flwr.common.Code.OK:
        raise FlowerClientError(f"the Flower client's {what} answered "
                                f"{getattr(getattr(status, 'code', None), 'name', status)}: "
                                f"{getattr(status, 'message', '')}"[:300])
    return res


def client_parameters(client: "Client") -> list[np.ndarray]:
    """The client's current parameters (``get_parameters``)."""
    flwr = _flwr()
    res = _ok(client.get_parameters(flwr.common.GetParametersIns(config={})), "get_parameters")
    return flwr.common.parameters_to_ndarrays(res.parameters)


def model_facts(client: "Client") -> tuple[dict, np.ndarray]:
    """(the spec's ``model`` section, version 0 as a flat vector) of a job whose parameters come from ``client``."""
    arrays = client_parameters(client)
    layout = ArrayLayout.of(arrays)
    vec = layout.flatten(arrays)
    if not np.all(np.isfinite(vec)):
        raise FlowerClientError("the client's initial parameters are not all finite")
    return {"arch_id": FLOWER_ARCH, "arch_hash": layout.arch_hash, "initial_hash": model_hash(vec),
            "shape_digest": layout.digest, "num_params": int(vec.size)}, vec


def job_model_facts(ref: str, job_id: str, rounds: int, hyper: Hyperparams) -> dict:
    """The ``model`` section for a new job from the client ``ref`` builds for the first participant."""
    facts, _ = model_facts(build_client(ref, context_for(job_id, rounds, hyper, 0)))
    return facts


def _number(metrics: dict, key: str) -> Optional[float]:
    v = metrics.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        return None
    return float(v)


def _micro(x: float) -> int:
    return int(round(min(max(x, -MAX_LOSS), MAX_LOSS) * 1e6))


@dataclass(frozen=True)
class Evaluation:
    """What the client's ``evaluate`` said of one parameter vector."""

    loss: float
    samples: int
    accuracy: Optional[float]


class FlowerRecipe(Trainer):
    """An org's trainer that is its Flower ``client`` (see the module docstring)."""

    def __init__(self, spec: JobSpec, org: str, client: "Client") -> None:
        super().__init__(spec, org)
        if spec.model.arch_id != FLOWER_ARCH:
            raise FlowerClientError(f"job {spec.job_id}'s model is fedfabric's {spec.model.arch_id!r}, not parameters "
                                    "from a Flower client; start the node without --flower-client")
        self.client = client
        arrays = client_parameters(client)
        self.layout = ArrayLayout.of(arrays)
        want = spec.model
        if self.layout.digest != want.shape_digest or self.layout.size != want.num_params:
            raise FlowerClientError(f"the client's parameters ({len(self.layout.shapes)} arrays, {self.layout.size} "
                                    f"values, shape digest {self.layout.digest[:12]}…) are not the job's model "
                                    f"({want.num_params} values, shape digest {want.shape_digest[:12]}…)")
        self._initial = self.layout.flatten(arrays)
        if model_hash(self._initial) != want.initial_hash:
            raise FlowerClientError(f"the client's initial parameters hash to {model_hash(self._initial)[:12]}…, "
                                    f"version 0 of job {spec.job_id} to {want.initial_hash[:12]}…: every org's "
                                    "client must start from the same parameters (seed its model)")
        self._samples: Optional[int] = None
        self._val_samples: Optional[int] = None

    @classmethod
    def from_ref(cls, spec: JobSpec, org: str, ref: str) -> "FlowerRecipe":
        """The trainer of ``org`` built from the factory ``ref`` names, with the org's flwr ``Context``."""
        shards = spec.hyperparams.shards
        if org not in shards:
            raise FlowerClientError(f"{org} is not among job {spec.job_id}'s participants ({', '.join(shards)})")
        ctx = context_for(spec.job_id, spec.rounds, spec.hyperparams, shards.index(org))
        return cls(spec, org, build_client(ref, ctx))

    @property
    def initial(self) -> np.ndarray:
        """Version 0: the client's parameters when it was built (checked against the ledger's hash)."""
        return self._initial

    @property
    def samples(self) -> Optional[int]:
        """``num_examples`` of the client's last ``fit`` (None before the first)."""
        return self._samples

    @property
    def validation_samples(self) -> Optional[int]:
        """``num_examples`` of the client's last ``evaluate`` (None before the first)."""
        return self._val_samples

    def fit_config(self, r: int) -> dict:
        """The config of round ``r``'s ``fit``: the job's training section."""
        h = self.spec.hyperparams
        return {"server_round": int(r), "local_epochs": int(h.epochs), "lr": float(h.lr), "batch_size": int(h.batch_size),
                "optimizer": h.optimizer, "proximal_mu": float(h.mu), "seed": int(h.seed * 1000 + r)}

    def _parameters(self, vec: np.ndarray) -> Any:
        return _flwr().common.ndarrays_to_parameters(self.layout.unflatten(vec))

    def fit(self, base: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """The client's ``fit`` from ``base``: its new parameters, new - base and the training record."""
        flwr = _flwr()
        base32 = np.asarray(base, np.float32)
        start = time.time()
        res = _ok(self.client.fit(flwr.common.FitIns(self._parameters(base32), self.fit_config(r))), "fit")
        end = time.time()
        new = self.layout.flatten(flwr.common.parameters_to_ndarrays(res.parameters), "fit result")
        n = res.num_examples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FlowerClientError(f"the client's fit reported num_examples={n!r}; it must be a positive integer")
        self._samples = n
        metrics = dict(res.metrics or {})
        h = self.spec.hyperparams
        loss = _number(metrics, "train_loss")
        iters = metrics.get("iterations")
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
            iters = math.ceil(n / h.batch_size) * h.epochs
        fp = metrics.get("data_fingerprint")
        if not (isinstance(fp, str) and len(fp) == 64 and all(c in "0123456789abcdef" for c in fp)):
            fp = hashlib.sha256(json.dumps({"flower": type(self.client).__qualname__, "org": self.org, "samples": n},
                                           sort_keys=True).encode()).hexdigest()
        # one loss per epoch: the client reports one for the whole fit at most; -1e-6 marks "not reported"
        losses = [-1e-6] * (h.epochs - 1) + [loss if loss is not None else -1e-6]
        record = {"start": start, "end": end, "epochs": h.epochs, "iterations": int(iters), "loss_per_epoch": losses,
                  "samples": n, "data_fingerprint": fp, "train_loss": loss}
        return new, new - base32, record

    def evaluate(self, vec: np.ndarray, r: int = 0) -> Evaluation:
        """The client's ``evaluate`` of ``vec`` (its validation data)."""
        flwr = _flwr()
        res = _ok(self.client.evaluate(flwr.common.EvaluateIns(self._parameters(vec), {"server_round": int(r)})),
                  "evaluate")
        n = res.num_examples
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise FlowerClientError(f"the client's evaluate reported num_examples={n!r}")
        self._val_samples = n
        loss = float(res.loss) if isinstance(res.loss, (int, float)) and not isinstance(res.loss, bool) else math.nan
        return Evaluation(loss, n, _number(dict(res.metrics or {}), "accuracy"))

    def local_metrics(self, lu: LocalUpdate) -> dict[str, int]:
        """The client's evaluation of its trained parameters, and its reported training loss."""
        ev = self.evaluate(lu.new, lu.round)
        out = {"local_val_loss_micro": _micro(ev.loss) if math.isfinite(ev.loss) else -1}
        if ev.accuracy is not None:
            out["local_val_accuracy_milli"] = int(round(ev.accuracy * 1000))
        if lu.record.get("train_loss") is not None:
            out["train_loss_micro"] = _micro(lu.record["train_loss"])
        return out

    def judge(self, candidate: np.ndarray, base: np.ndarray) -> Judgement:
        """Approve unless the candidate's loss is not finite or, when the client reports accuracy, it loses more
        than MAX_ACCURACY_DROP against the base."""
        new, old = self.evaluate(candidate), self.evaluate(base)
        ok = math.isfinite(new.loss)
        if ok and new.accuracy is not None and old.accuracy is not None:
            ok = new.accuracy >= old.accuracy - MAX_ACCURACY_DROP
        metrics = {"val_loss_micro": _micro(new.loss) if math.isfinite(new.loss) else -1, "val_samples": new.samples}
        if new.accuracy is not None:
            metrics["val_accuracy_milli"] = int(round(new.accuracy * 1000))
        return Judgement(ok, metrics, new.accuracy if new.accuracy is not None else math.nan)


def recipe_factory(ref: str) -> Callable[[JobSpec, str], FlowerRecipe]:
    """An ``OrgNode`` ``recipe_for``: every job's trainer is the Flower client ``ref`` builds."""
    _flwr()
    load_factory(ref)   # a wrong reference fails now, before the node joins anything

    def recipe_for(spec: JobSpec, msp_id: str) -> FlowerRecipe:
        return FlowerRecipe.from_ref(spec, msp_id, ref)

    return recipe_for


__all__ = ["ArrayLayout", "FLOWER_ARCH", "FlowerClientError", "FlowerRecipe", "build_client", "context_for",
           "job_model_facts", "load_factory", "model_facts", "recipe_factory"]
