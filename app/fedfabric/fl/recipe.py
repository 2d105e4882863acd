"""The training recipe of one org in one job: train from a base, privatize (DP), encode, mask, and judge
a candidate. The node, the in-process simulation, the benchmarks and the tests all use this object,
so what they compute is what a node submits.

:class:`Trainer` is what a node asks of an org's trainer; what is the node's and never the trainer's
(DP, the fixed-point encoding, the masks, the update's public record) is done here, once, for every
trainer. :class:`Recipe` is the job's own recipe on the org's shard of the job's dataset;
``fl.flower.FlowerRecipe`` runs an org's Flower client instead.

The recipe's only inputs are the job's typed spec and the org's task (its data); the secure-mode
masks need the round's pairwise seeds, which the caller derives from its round key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np

from fedfabric_protocol import codec
from fedfabric_protocol.records import UpdateMeta
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import Privacy

from . import dp, fixedpoint, secagg
from .models import vector_to_model
from .task import TrainingTask
from .train import evaluate, local_train

MAX_ACCURACY_DROP = 0.25   # a candidate that loses more than this on the org's own validation data is voted down


@dataclass(frozen=True)
class LocalUpdate:
    """What an org trained in one round: its new parameters, the (privatized) update and the facts."""

    round: int
    new: np.ndarray
    update: np.ndarray
    record: dict
    dp_epsilon_milli: Optional[int]


@dataclass(frozen=True)
class Judgement:
    """An org's evaluation of a candidate model on its own validation data."""

    approve: bool
    metrics: dict[str, int]
    accuracy: float


class Trainer:
    """An org's trainer in a job: subclasses train (:meth:`fit`), evaluate (:meth:`local_metrics`,
    :meth:`judge`) and hold version 0 (:attr:`initial`); DP, encoding, masking and the update's record are
    done here the same way for all of them."""

    def __init__(self, spec: JobSpec, org: str) -> None:
        self.spec, self.org = spec, org
        self.dp = dp.dp_config(spec.dp)

    @property
    def initial(self) -> np.ndarray:
        """Version 0 of the job's model as this trainer builds it (the node checks it against the ledger)."""
        raise NotImplementedError

    @property
    def samples(self) -> Optional[int]:
        """Training samples, when known before training (None: the trainer says so when it trains)."""
        raise NotImplementedError

    @property
    def validation_samples(self) -> Optional[int]:
        """Validation samples, when known before evaluating."""
        raise NotImplementedError

    def fit(self, base: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """Local training of round ``r`` from ``base``: (new parameters, new - base, training record with
        ``start``/``end`` (epoch seconds), ``epochs``, ``iterations``, ``loss_per_epoch`` (floats),
        ``samples`` and ``data_fingerprint``)."""
        raise NotImplementedError

    def local_metrics(self, lu: LocalUpdate) -> dict[str, int]:
        """Metrics of the trained parameters for the update's public record (integers, milli/micro-units)."""
        raise NotImplementedError

    def judge(self, candidate: np.ndarray, base: np.ndarray) -> Judgement:
        """This org's evaluation of a candidate model against the round's base, and its verdict."""
        raise NotImplementedError

    def train(self, base: np.ndarray, r: int, rng: Optional[np.random.Generator] = None) -> LocalUpdate:
        """:meth:`fit` from ``base``, then DP when the job has it (``rng`` draws the noise; fresh entropy by
        default)."""
        new, update, record = self.fit(base, r)
        eps = None
        if self.dp is not None:
            update = dp.privatize(update, self.dp, rng or np.random.default_rng())
            eps = dp.round_epsilon_milli(self.dp, r)
        return LocalUpdate(r, new, update, record, eps)

    def sample_count(self, lu: LocalUpdate) -> int:
        """The samples ``lu`` was trained on: its weight in secure mode and its record's ``sample_count``."""
        return int(lu.record.get("samples") or self.samples)

    def encode(self, lu: LocalUpdate, participants: int, seeds: Optional[Mapping[str, bytes]] = None) -> np.ndarray:
        """The update as words: secure mode weighted by the sample count (with ``participants`` as headroom
        so the mod-2^32 sum cannot wrap) and masked with the pairwise ``seeds`` ({peer: seed}); clear mode
        plain. Raises :class:`fixedpoint.FixedPointError` when it cannot be encoded."""
        if self.spec.privacy is Privacy.SECURE:
            enc = fixedpoint.encode_weighted(lu.update, self.sample_count(lu), headroom=max(1, participants))
            return secagg.mask_update(enc, self.org, dict(seeds or {})) if seeds else enc
        return fixedpoint.encode(lu.update)

    def meta(self, lu: LocalUpdate, payload: bytes, endpoint: Optional[str] = None) -> dict:
        """The update's public record (hash, size, samples, training facts, local metrics)."""
        rec = lu.record
        start = int(rec["start"])
        training = {"start": start, "end": max(start, int(rec["end"])), "epochs": rec["epochs"],
                    "iterations": rec["iterations"],
                    "loss_per_epoch": [int(round(x * 1e6)) for x in rec["loss_per_epoch"]],
                    "data_fingerprint": rec["data_fingerprint"]}
        meta = {"sha256": codec.sha256_hex(payload), "size": len(payload),
                "shape_digest": self.spec.model.shape_digest, "sample_count": self.sample_count(lu),
                "training": training, "metrics": self.local_metrics(lu)}
        if lu.dp_epsilon_milli is not None:
            meta["dp_epsilon_milli"] = lu.dp_epsilon_milli
        if endpoint is not None:
            meta["endpoint"] = endpoint
        return UpdateMeta.from_dict(meta).to_dict()

    @staticmethod
    def candidate(base: np.ndarray, aggregate_words: np.ndarray) -> np.ndarray:
        """The next model if this aggregate is accepted: base + decoded aggregate, as float32."""
        return (np.asarray(base, np.float64) + fixedpoint.decode(aggregate_words)).astype(np.float32)


class Recipe(Trainer):
    """``task``'s part of ``spec``: the job's model, trained on the org's shard of the job's dataset."""

    def __init__(self, spec: JobSpec, task: TrainingTask) -> None:
        super().__init__(spec, task.org)
        self.task = task

    @property
    def initial(self) -> np.ndarray:
        """The job's initial model built from its hyper-parameters."""
        return self.task.initial

    @property
    def samples(self) -> int:
        """The org's training samples."""
        return self.task.samples

    @property
    def validation_samples(self) -> int:
        """The org's validation samples."""
        return int(len(self.task.y_val))

    def fit(self, base: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """Local training from ``base``, seeded by the job and the round."""
        h = self.spec.hyperparams
        return local_train(self.task.new_model(), base, self.task.X_train, self.task.y_train,
                           epochs=h.epochs, lr=float(h.lr), batch_size=h.batch_size,
                           optimizer=h.optimizer, mu=float(h.mu), seed=h.seed * 1000 + r)

    def local_metrics(self, lu: LocalUpdate) -> dict[str, int]:
        """Validation accuracy of the trained parameters and the last epoch's training loss."""
        local = self.evaluate(lu.new)
        return {"local_val_accuracy_milli": int(round(local["accuracy"] * 1000)),
                "train_loss_micro": int(round(lu.record["loss_per_epoch"][-1] * 1e6))}

    def evaluate(self, vec: np.ndarray) -> dict[str, float]:
        """Accuracy, loss and macro F1 of ``vec`` on the org's validation data."""
        return evaluate(vector_to_model(self.task.new_model(), vec), self.task.X_val, self.task.y_val)

    def judge(self, candidate: np.ndarray, base: np.ndarray) -> Judgement:
        """Approve unless the candidate is non-finite or loses more than MAX_ACCURACY_DROP against the base."""
        new, old = self.evaluate(candidate), self.evaluate(base)
        finite = bool(np.isfinite(new["loss"]))
        ok = finite and new["accuracy"] >= old["accuracy"] - MAX_ACCURACY_DROP
        metrics = {"val_accuracy_milli": int(round(new["accuracy"] * 1000)),
                   "val_loss_micro": int(round(min(new["loss"], 1e6) * 1e6)) if finite else -1,
                   "val_f1_milli": int(round(new["f1"] * 1000)), "val_samples": int(len(self.task.y_val))}
        return Judgement(ok, metrics, new["accuracy"])


__all__ = ["Judgement", "LocalUpdate", "Recipe", "Trainer", "MAX_ACCURACY_DROP"]
