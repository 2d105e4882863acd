"""Deterministic data partitioners (IID, Dirichlet, by-label)."""
from __future__ import annotations

import numpy as np


def iid(y: np.ndarray, n_orgs: int, seed: int = 0) -> list[np.ndarray]:
    """Random equal-size split."""
    idx = np.random.default_rng(seed).permutation(len(y))
    return [np.sort(p) for p in np.array_split(idx, n_orgs)]


def dirichlet(y: np.ndarray, n_orgs: int, alpha: float, seed: int = 0, min_size: int = 10,
              max_tries: int = 100) -> list[np.ndarray]:
    """Per-class Dirichlet(alpha) proportions; resample until each org has >= min_size."""
    if min_size * n_orgs > len(y):
        raise ValueError("not enough samples for min_size")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        parts: list[list[int]] = [[] for _ in range(n_orgs)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            cuts = (np.cumsum(rng.dirichlet([alpha] * n_orgs))[:-1] * len(idx)).astype(int)
            for o, chunk in enumerate(np.split(idx, cuts)):
                parts[o].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
    raise ValueError("could not satisfy min_size; raise alpha or lower min_size")


def by_label(y: np.ndarray, n_orgs: int, seed: int = 0) -> list[np.ndarray]:
    """Each org gets a disjoint set of labels (round-robin over shuffled labels)."""
    labels = np.random.default_rng(seed).permutation(np.unique(y))
    if len(labels) < n_orgs:
        raise ValueError("fewer labels than orgs")
    return [np.sort(np.flatnonzero(np.isin(y, labels[o::n_orgs]))) for o in range(n_orgs)]
