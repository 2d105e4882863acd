"""Float reference aggregation rules."""
from __future__ import annotations

import numpy as np


def fedavg(updates: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Sample-weighted mean."""
    w = np.asarray(weights, np.float64)
    return (np.stack(updates).astype(np.float64) * w[:, None]).sum(0) / w.sum()


def trimmed_mean(updates: list[np.ndarray], trim: int = 1) -> np.ndarray:
    """Coordinate-wise mean after dropping `trim` largest and smallest."""
    s = np.sort(np.stack(updates).astype(np.float64), axis=0)
    if 2 * trim >= len(updates):
        raise ValueError("trim too large for number of updates")
    return s[trim:len(updates) - trim].mean(0)


def coordinate_median(updates: list[np.ndarray]) -> np.ndarray:
    """Coordinate-wise median."""
    return np.median(np.stack(updates).astype(np.float64), axis=0)


def multi_krum(updates: list[np.ndarray], f: int = 1, m: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Multi-Krum: average the m updates with lowest Krum score; returns (mean, selected indices)."""
    n = len(updates)
    if n < 2 * f + 3:
        raise ValueError("Multi-Krum needs n >= 2f+3")
    U = np.stack(updates).astype(np.float64)
    d = ((U[:, None, :] - U[None, :, :]) ** 2).sum(-1)
    k = n - f - 2
    scores = [float(np.sort(np.delete(d[i], i))[:k].sum()) for i in range(n)]
    m = m or n - f
    sel = sorted(np.argsort(scores, kind="stable")[:m].tolist())
    return U[sel].mean(0), sel
