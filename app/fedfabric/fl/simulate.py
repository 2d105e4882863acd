"""In-process federated simulation (no ledger)."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from . import aggregate, dp, fixedpoint, partition, secagg
from .datasets import Dataset
from .models import build_model, model_to_vector, vector_to_model
from .train import evaluate, local_train

logger = logging.getLogger(__name__)


def _secure_sum(updates: list[np.ndarray], ns: list[int], ctx: bytes) -> np.ndarray:
    ids = [f"org{i:03d}" for i in range(len(updates))]
    keys = [secagg.generate_keypair() for _ in ids]
    total = np.zeros(updates[0].size, np.uint32)
    for i, (u, n) in enumerate(zip(updates, ns)):
        peers = {ids[j]: secagg.pairwise_seed(keys[i][0], keys[j][1], ctx) for j in range(len(ids)) if j != i}
        enc = fixedpoint.encode_weighted(u, n, headroom=len(updates))
        total = fixedpoint.add_mod(total, secagg.mask_update(enc, ids[i], peers))
    return fixedpoint.decode_fedavg(total, sum(ns))


def run_federated(ds: Dataset, arch: str, arch_kwargs: dict, *, n_orgs: int = 3, alpha: float = 0.5,
                  rounds: int = 10, epochs: int = 1, lr: float = 0.05, batch_size: int = 32,
                  optimizer: str = "sgd", mu: float = 0.0, rule: str = "fedavg", secure: bool = False,
                  dp_cfg: dp.DPConfig | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Run rounds; returns per-round metrics on the test set."""
    parts = partition.dirichlet(ds.y_train, n_orgs, alpha, seed=seed)
    model = build_model(arch, seed=seed, **arch_kwargs)
    gvec = model_to_vector(model)
    rng = np.random.default_rng(seed)
    history = []
    for r in range(rounds):
        ups, ns = [], []
        for o, idx in enumerate(parts):
            _, up, _ = local_train(model, gvec, ds.X_train[idx], ds.y_train[idx], epochs=epochs, lr=lr,
                                   batch_size=batch_size, optimizer=optimizer, mu=mu, seed=seed * 1000 + r * 31 + o)
            if dp_cfg is not None:
                up = dp.privatize(up, dp_cfg, rng)
            ups.append(up)
            ns.append(len(idx))
        if secure:
            agg = _secure_sum(ups, ns, f"sim|{seed}|{r}".encode())
        elif rule == "fedavg":
            agg = aggregate.fedavg(ups, ns)
        elif rule == "trimmed_mean":
            agg = aggregate.trimmed_mean(ups, 1)
        elif rule == "median":
            agg = aggregate.coordinate_median(ups)
        elif rule == "multi_krum":
            agg, _ = aggregate.multi_krum(ups, f=1)
        else:
            raise ValueError(f"unknown rule {rule!r}")
        gvec = (gvec + agg).astype(np.float32)
        m = evaluate(vector_to_model(model, gvec), ds.X_test, ds.y_test)
        m["round"] = r + 1
        if dp_cfg is not None:
            m["epsilon"] = dp.epsilon(dp_cfg, r + 1)
        history.append(m)
        logger.info("round %d acc=%.4f", r + 1, m["accuracy"])
    return history


def centralized_baseline(ds: Dataset, arch: str, arch_kwargs: dict, *, epochs: int = 10, lr: float = 0.05,
                         batch_size: int = 32, optimizer: str = "sgd", seed: int = 0) -> dict[str, float]:
    """Train on pooled training data; test metrics."""
    model = build_model(arch, seed=seed, **arch_kwargs)
    new, _, _ = local_train(model, model_to_vector(model), ds.X_train, ds.y_train, epochs=epochs, lr=lr,
                            batch_size=batch_size, optimizer=optimizer, seed=seed)
    return evaluate(vector_to_model(model, new), ds.X_test, ds.y_test)
