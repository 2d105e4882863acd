"""Exact integer arithmetic the rule kernels share: rounding division, distances, sorting by coordinate.

Inputs are equal-length int64 vectors of fixed-point values with |x| < 2^31. Division is always
round-half-to-even of the exact rational, so every peer and node gets the same bits.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import refuse

MAX_TOTAL_WEIGHT = 1 << 31   # keeps sum(n_i * x_i) inside int64 for |x_i| < 2^31


def div_round(num: np.ndarray, den: int) -> np.ndarray:
    """Elementwise ``num / den`` rounded half to even; ``den`` > 0."""
    if den <= 0:
        raise refuse("division by a non-positive number")
    num = np.asarray(num, dtype=np.int64)
    q = np.floor_divide(num, den)
    r = num - q * den  # 0 <= r < den
    up = (2 * r > den) | ((2 * r == den) & (q % 2 == 1))
    return q + up.astype(np.int64)


def stack(values: Sequence[np.ndarray]) -> np.ndarray:
    """The updates as one int64 matrix (one row each); refuses none or unequal lengths."""
    if not len(values):
        raise refuse("no updates to aggregate")
    n = len(values[0])
    for v in values:
        if len(v) != n:
            raise refuse(f"wrong length: {len(v)} values, expected {n}")
    return np.stack([np.asarray(v, dtype=np.int64) for v in values])


def weighted_mean(rows: np.ndarray, weights: Sequence[int]) -> np.ndarray:
    """``sum(w_i * x_i) / sum(w_i)``, rounded half to even; weights positive, total below 2^31."""
    if len(weights) != len(rows) or any(int(w) <= 0 for w in weights):
        raise refuse("every update needs a positive sample count")
    total = sum(int(w) for w in weights)
    if total >= MAX_TOTAL_WEIGHT:
        raise refuse(f"total sample count {total} exceeds {MAX_TOTAL_WEIGHT - 1}")
    acc = np.zeros(rows.shape[1], dtype=np.int64)
    for row, w in zip(rows, weights):
        acc += row * int(w)
    return div_round(acc, total)


def mean(rows: np.ndarray) -> np.ndarray:
    """Unweighted mean of the rows, rounded half to even."""
    return div_round(rows.sum(axis=0), len(rows))


def coordinate_median(rows: np.ndarray) -> np.ndarray:
    """Coordinate-wise median; for an even count the two middle values are averaged (half-even)."""
    s = np.sort(rows, axis=0)
    n = len(s)
    if n % 2:
        return s[n // 2].copy()
    return div_round(s[n // 2 - 1] + s[n // 2], 2)


def squared_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Exact squared Euclidean distance of two int64 vectors with |x| < 2^31, as a Python int."""
    d = np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64)).astype(np.uint64)  # < 2^32
    sq = d * d  # < 2^64, exact in uint64
    hi = int((sq >> np.uint64(32)).sum(dtype=np.uint64))
    lo = int((sq & np.uint64(0xFFFFFFFF)).sum(dtype=np.uint64))
    return (hi << 32) + lo


def distance_matrix(rows: np.ndarray) -> list[list[int]]:
    """Exact pairwise squared distances."""
    n = len(rows)
    d = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            d[i][j] = d[j][i] = squared_distance(rows[i], rows[j])
    return d


def krum_scores(dist: list[list[int]], f: int) -> list[int]:
    """Krum score of each update: the sum of its ``n - f - 2`` smallest squared distances to the others."""
    n = len(dist)
    k = n - f - 2
    return [sum(sorted(dist[i][j] for j in range(n) if j != i)[:k]) for i in range(n)]


def order_by_score(rows: np.ndarray, scores: Sequence[int]) -> list[int]:
    """Indices by ascending score; ties broken by the vector's bytes (so input order never matters)."""
    return sorted(range(len(rows)), key=lambda i: (scores[i], rows[i].tobytes()))
