"""The same federated job in one process, without a ledger: every org's recipe, the protocol's own
aggregation, the same fixed-point words. Without DP it is bit-identical to a run on the network
(masks cancel exactly in the secure sum, so they are left out here), server optimizer included.

Used by the accuracy and overhead benchmarks and by tests that compare against the ledger path;
``transform`` lets a caller change an org's update before it is encoded (e.g. an attack benchmark).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from fedfabric_protocol import aggregate, optimizers
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import Privacy

from ..artifacts import model_hash
from .datasets import load_dataset
from .models import build_model, model_to_vector, vector_to_model
from .recipe import Recipe
from .task import held_out_split, resolve_arch_kwargs, task_for
from .train import evaluate, local_train

Transform = Callable[[str, int, np.ndarray], np.ndarray]


@dataclass
class RoundResult:
    round: int
    seconds: float
    accuracy: float
    loss: float
    aggregate_hash: str
    model_hash: str
    flagged: tuple[str, ...] = ()
    step_hash: str = ""       # with a server optimizer: what the ballots carry
    state_hash: str = ""


@dataclass
class Simulation:
    spec: JobSpec
    rounds: list[RoundResult] = field(default_factory=list)
    model: Optional[np.ndarray] = None


def simulate(spec: JobSpec, rounds: Optional[int] = None, dp_seed: int = 0,
             transform: Optional[Transform] = None) -> Simulation:
    """Run ``rounds`` (default: the spec's) rounds in process; test accuracy after each."""
    recipes = {m: Recipe(spec, task_for(spec, m)) for m in spec.hyperparams.shards}
    first = next(iter(recipes.values()))
    vec = first.task.initial
    X_test, y_test = held_out_split(spec.hyperparams)
    rng = np.random.default_rng(dp_seed)
    out = Simulation(spec)
    n = len(recipes)
    state = None   # the server optimizer's state after the current model (None: the zero state)
    for r in range(1, (rounds or spec.rounds) + 1):
        t0 = time.perf_counter()
        words, samples = {}, {}
        for m in sorted(recipes):
            rec = recipes[m]
            lu = rec.train(vec, r, rng)
            if transform is not None:
                lu = type(lu)(lu.round, lu.new, transform(m, r, lu.update), lu.record, lu.dp_epsilon_milli)
            words[m], samples[m] = rec.encode(lu, n), rec.samples
        if spec.privacy is Privacy.SECURE:
            agg = aggregate.secure_aggregate(spec.aggregation, words, samples, {}, [])
        else:
            agg = aggregate.clear_aggregate(spec.aggregation, words, samples, spec.incentives.anomaly_factor)
        step = optimizers.server_step(spec.server_optimizer, agg.words, state)
        state = step.state or None
        vec = Recipe.candidate(vec, step.words)
        seconds = time.perf_counter() - t0
        m_test = evaluate(vector_to_model(first.task.new_model(), vec), X_test, y_test)
        out.rounds.append(RoundResult(r, seconds, m_test["accuracy"], m_test["loss"], agg.hash, model_hash(vec),
                                      agg.flagged, step.hash if spec.server_optimizer else "", step.state_hash))
    out.model = vec
    return out


def centralized(spec: JobSpec) -> dict[str, float]:
    """The baseline every report compares with: the job's model trained on the pooled training data of all
    shards (as many epochs as the whole federation runs), evaluated on the held-out test split."""
    h = spec.hyperparams
    ds = load_dataset(h.dataset, seed=h.seed)
    model = build_model(h.arch, seed=h.seed, **resolve_arch_kwargs(h, ds))
    new, _, _ = local_train(model, model_to_vector(model), ds.X_train, ds.y_train, epochs=h.epochs * spec.rounds,
                            lr=float(h.lr), batch_size=h.batch_size, optimizer=h.optimizer, seed=h.seed)
    return evaluate(vector_to_model(model, new), ds.X_test, ds.y_test)
