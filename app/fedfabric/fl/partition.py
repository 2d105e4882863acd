"""Deterministic data partitioners (IID, Dirichlet, by-label)."""
from __future__ import annotations

import numpy as np


class PartitionError(ValueError):
    """A split that leaves some org without a usable shard; ``org`` is that org's index, ``size`` its share."""

    def __init__(self, message: str, org: int, size: int) -> None:
        super().__init__(message)
        self.org, self.size = org, size


def iid(y: np.ndarray, n_orgs: int, seed: int = 0) -> list[np.ndarray]:
    """Random equal-size split."""
    idx = np.random.default_rng(seed).permutation(len(y))
    return [np.sort(p) for p in np.array_split(idx, n_orgs)]


def dirichlet(y: np.ndarray, n_orgs: int, alpha: float, seed: int = 0, min_size: int = 10,
              max_tries: int = 100) -> list[np.ndarray]:
    """Per-class Dirichlet(alpha) proportions; resample until each org has >= min_size."""
    if min_size * n_orgs > len(y):
        raise PartitionError(f"{len(y)} samples cannot give {n_orgs} orgs {min_size} each", n_orgs - 1,
                             len(y) // n_orgs)
    rng = np.random.default_rng(seed)
    smallest = (0, 0)
    for _ in range(max_tries):
        parts: list[list[int]] = [[] for _ in range(n_orgs)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            cuts = (np.cumsum(rng.dirichlet([alpha] * n_orgs))[:-1] * len(idx)).astype(int)
            for o, chunk in enumerate(np.split(idx, cuts)):
                parts[o].extend(chunk.tolist())
        sizes = [len(p) for p in parts]
        if min(sizes) >= min_size:
            return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
        smallest = (int(np.argmin(sizes)), min(sizes))
    raise PartitionError(f"Dirichlet(alpha={alpha}) left org #{smallest[0] + 1} with {smallest[1]} samples "
                         f"(< {min_size}) in all {max_tries} draws; raise alpha", *smallest)


def by_label(y: np.ndarray, n_orgs: int, seed: int = 0) -> list[np.ndarray]:
    """Each org gets a disjoint set of labels (round-robin over shuffled labels)."""
    labels = np.random.default_rng(seed).permutation(np.unique(y))
    if len(labels) < n_orgs:
        raise PartitionError(f"{len(labels)} labels cannot be split among {n_orgs} orgs: org #{len(labels) + 1} "
                             "would get no data", len(labels), 0)
    return [np.sort(np.flatnonzero(np.isin(y, labels[o::n_orgs]))) for o in range(n_orgs)]
