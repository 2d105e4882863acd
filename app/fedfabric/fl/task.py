"""One org's data for a job, derived from the spec's ``hyperparams``: shard, validation split, initial model.

Every org derives the same dataset split and initial model from the typed hyper-parameters; each
org keeps only its own shard (in a real consortium each org's shard is its own private data).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from fedfabric_protocol.spec import Hyperparams, JobSpec

from ..artifacts import model_hash
from . import partition
from .datasets import Dataset, load_dataset
from .models import architecture_hash, build_model, model_to_vector, parameter_shapes, shape_digest


class TaskError(ValueError):
    """The job's recipe cannot be followed here (unknown dataset, org without a shard, …)."""


FLOWER_ARCH = "flower"   # spec.model.arch_id of a job whose parameters come from Flower clients (fl.flower)


@lru_cache(maxsize=8)
def _dataset(name: str, seed: int) -> Dataset:
    try:
        return load_dataset(name, seed=seed)
    except KeyError:
        raise TaskError(f"unknown dataset {name!r}") from None


def resolve_arch_kwargs(hyper: Hyperparams, ds: Dataset) -> dict:
    """Architecture arguments completed from the data (input size, classes, image side)."""
    kw = dict(hyper.arch_kwargs)
    dim = int(ds.X_train.shape[1])
    if hyper.arch == "cnn":
        side = int(round(dim ** 0.5))
        if side * side != dim:
            raise TaskError(f"cnn needs square images; {ds.name} has {dim} features")
        kw.setdefault("side", side)
    else:
        kw.setdefault("in_dim", dim)
    kw.setdefault("n_classes", ds.n_classes)
    return kw


def model_facts(hyper: Hyperparams) -> tuple[dict, np.ndarray]:
    """(the spec's ``model`` section, the initial parameter vector) for a recipe."""
    ds = _dataset(hyper.dataset, hyper.seed)
    kw = resolve_arch_kwargs(hyper, ds)
    model = build_model(hyper.arch, seed=hyper.seed, **kw)
    vec = model_to_vector(model)
    facts = {"arch_id": hyper.arch, "arch_hash": architecture_hash(hyper.arch, kw),
             "initial_hash": model_hash(vec), "shape_digest": shape_digest(parameter_shapes(model)),
             "num_params": int(vec.size)}
    return facts, vec


MIN_SHARD = 10   # samples an org needs: a validation split and a few training batches


def shards(hyper: Hyperparams, y: np.ndarray) -> list[np.ndarray]:
    """Every org's training indices, in ``hyper.shards`` order (:class:`PartitionError` if impossible)."""
    n, seed = len(hyper.shards), hyper.seed
    if hyper.partition == "iid":
        return partition.iid(y, n, seed=seed)
    if hyper.partition == "by_label":
        return partition.by_label(y, n, seed=seed)
    return partition.dirichlet(y, n, float(hyper.alpha), seed=seed, min_size=MIN_SHARD)


def _split_sizes(n: int, hyper: Hyperparams) -> tuple[int, int]:
    """(training, validation) sample counts of a shard of ``n`` samples."""
    n_val = max(1, int(round(n * float(hyper.val_fraction))))
    return n - n_val, n_val


def check_shards(hyper: Hyperparams) -> list[int]:
    """Shard sizes of a recipe; :class:`partition.PartitionError` for the first org whose shard is unusable
    (empty, or too small for a validation split plus training data)."""
    ds = _dataset(hyper.dataset, hyper.seed)
    parts = shards(hyper, ds.y_train)
    for i, idx in enumerate(parts):
        n_train, n_val = _split_sizes(len(idx), hyper)
        if len(idx) < MIN_SHARD or n_train < 1:
            raise partition.PartitionError(f"its shard has {len(idx)} samples ({n_train} for training, "
                                           f"{n_val} for validation); at least {MIN_SHARD} are needed", i, len(idx))
    return [len(p) for p in parts]


@dataclass
class TrainingTask:
    """One org's part of a job: its training and validation data and the job's initial model."""

    job_id: str
    org: str
    hyper: Hyperparams
    arch_kwargs: dict
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    initial: np.ndarray
    facts: dict

    @property
    def samples(self) -> int:
        return int(len(self.y_train))

    def new_model(self) -> Any:
        return build_model(self.hyper.arch, seed=self.hyper.seed, **self.arch_kwargs)


def task_for(spec: JobSpec, org: str) -> TrainingTask:
    """``org``'s task in a job; checks the initial model built here against the spec's hashes."""
    hyper = spec.hyperparams
    if spec.model.arch_id == FLOWER_ARCH:
        raise TaskError(f"job {spec.job_id} takes its model from Flower clients (model arch_id {FLOWER_ARCH!r}): "
                        "start the node with --flower-client package.module:factory")
    if org not in hyper.shards:
        raise TaskError(f"{org} has no data shard in job {spec.job_id} (shards: {', '.join(hyper.shards)})")
    ds = _dataset(hyper.dataset, hyper.seed)
    kw = resolve_arch_kwargs(hyper, ds)
    facts, vec = model_facts(hyper)
    want = spec.model.to_dict()
    for k in ("arch_hash", "initial_hash", "shape_digest", "num_params"):
        if facts[k] != want[k]:
            raise TaskError(f"the initial model built here differs from the ledger's ({k}: {facts[k]} vs "
                            f"{want[k]}); check the fedfabric version")
    position = hyper.shards.index(org)
    try:
        idx = shards(hyper, ds.y_train)[position]
    except partition.PartitionError as exc:
        raise TaskError(f"the job's {hyper.partition} partition cannot be built: {exc}") from None
    rng = np.random.default_rng(hyper.seed + 7919 * (position + 1))
    perm = rng.permutation(idx)
    _, n_val = _split_sizes(len(perm), hyper)
    val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    if len(tr) < 1:
        raise TaskError(f"{org}'s shard in job {spec.job_id} has {len(idx)} samples: none left for training")
    return TrainingTask(job_id=spec.job_id, org=org, hyper=hyper, arch_kwargs=kw,
                        X_train=ds.X_train[tr], y_train=ds.y_train[tr], X_val=ds.X_train[val], y_val=ds.y_train[val],
                        initial=vec, facts=facts)


def held_out_split(hyper: Hyperparams) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's held-out test split (used by reports, benchmarks and the demo, never by training)."""
    ds = _dataset(hyper.dataset, hyper.seed)
    return ds.X_test, ds.y_test
