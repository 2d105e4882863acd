"""Aggregation rules in exact integer arithmetic over int64 fixed-point vectors.

Division is always round-half-to-even of the exact rational (``div_round``). Inputs are lists of
equal-length int64 vectors; every rule gives the same result for any order of its inputs (ties in
Multi-Krum are broken by the exact score, then by the vector's bytes).
"""
from __future__ import annotations

import numpy as np

from .codec import WEIGHT_SCALE, from_signed, sum_mod, to_signed
from .masks import apply_mask, mask_sign

MAX_TOTAL_WEIGHT = 1 << 31   # keeps sum(n_i * x_i) inside int64 for |x_i| < 2^31


class AggregationError(ValueError):
    """The inputs do not fit the rule (too few, wrong length, bad parameters)."""


def div_round(num: np.ndarray, den: int) -> np.ndarray:
    """Elementwise num / den rounded half to even; den > 0."""
    if den <= 0:
        raise AggregationError("division by a non-positive number")
    num = np.asarray(num, dtype=np.int64)
    q = np.floor_divide(num, den)
    r = num - q * den  # 0 <= r < den
    up = (2 * r > den) | ((2 * r == den) & (q % 2 == 1))
    return q + up.astype(np.int64)


def _stack(values: list[np.ndarray]) -> np.ndarray:
    if not values:
        raise AggregationError("no updates to aggregate")
    n = len(values[0])
    for v in values:
        if len(v) != n:
            raise AggregationError(f"wrong length: {len(v)} values, expected {n}")
    return np.stack([np.asarray(v, dtype=np.int64) for v in values])


def fedavg(values: list[np.ndarray], weights: list[int]) -> np.ndarray:
    """Sample-weighted mean: sum(n_i * x_i) / sum(n_i)."""
    u = _stack(values)
    if len(weights) != len(u) or any(int(w) <= 0 for w in weights):
        raise AggregationError("every update needs a positive sample count")
    total = sum(int(w) for w in weights)
    if total >= MAX_TOTAL_WEIGHT:
        raise AggregationError(f"total sample count {total} exceeds {MAX_TOTAL_WEIGHT - 1}")
    acc = np.zeros(u.shape[1], dtype=np.int64)
    for row, w in zip(u, weights):
        acc += row * int(w)
    return div_round(acc, total)


def fedavg_from_weighted_sum(total_words: np.ndarray, total_samples: int,
                             weight_scale: int = WEIGHT_SCALE) -> np.ndarray:
    """FedAvg from the mod-2^32 sum of weighted encodings (secure mode)."""
    if total_samples <= 0:
        raise AggregationError("total sample count must be positive")
    return div_round(to_signed(total_words) * int(weight_scale), int(total_samples))


def secure_sum(masked: list[np.ndarray], recovered_masks: list[tuple[np.ndarray, int]] = ()) -> np.ndarray:
    """Sum mod 2^32 of masked words; ``recovered_masks`` are ``(mask, sign)`` to remove.

    A survivor s added ``+mask`` against a dropped d when d > s, else ``-mask``; removing it means
    adding ``-sign * mask``.
    """
    total = sum_mod(list(masked))
    for mask, sign in recovered_masks:
        total = apply_mask(total, mask, -sign)
    return total


def dropout_sign(survivor: str, dropped: str) -> int:
    """+1 if the survivor added the pairwise mask with the dropped org, -1 if it subtracted it."""
    return mask_sign(survivor, dropped)


def trimmed_mean(values: list[np.ndarray], trim: int) -> np.ndarray:
    """Coordinate-wise mean after dropping the ``trim`` largest and smallest values."""
    u = _stack(values)
    if trim < 0 or 2 * trim >= len(u):
        raise AggregationError(f"trimmed mean with trim={trim} needs more than {2 * trim} updates, got {len(u)}")
    s = np.sort(u, axis=0)[trim:len(u) - trim]
    return div_round(s.sum(axis=0), len(s))


def coordinate_median(values: list[np.ndarray]) -> np.ndarray:
    """Coordinate-wise median; for an even count the two middle values are averaged (half-even)."""
    u = _stack(values)
    s = np.sort(u, axis=0)
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


def krum_scores(values: list[np.ndarray], f: int) -> list[int]:
    """Krum score of each update: sum of its n - f - 2 smallest squared distances to the others."""
    u = _stack(values)
    n = len(u)
    if f < 0 or n < 2 * f + 3:
        raise AggregationError(f"Multi-Krum with f={f} needs at least {2 * f + 3} updates, got {n}")
    d = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            d[i][j] = d[j][i] = squared_distance(u[i], u[j])
    k = n - f - 2
    return [sum(sorted(d[i][j] for j in range(n) if j != i)[:k]) for i in range(n)]


def multi_krum(values: list[np.ndarray], f: int, m: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Mean of the ``m`` (default n - f) updates with the lowest Krum scores, and their indices."""
    u = _stack(values)
    n = len(u)
    scores = krum_scores(values, f)
    m = n - f if m is None else m
    if not 1 <= m <= n - f:
        raise AggregationError(f"Multi-Krum m={m} must be between 1 and n - f = {n - f}")
    order = sorted(range(n), key=lambda i: (scores[i], u[i].tobytes()))
    sel = sorted(order[:m])
    return div_round(u[sel].sum(axis=0), m), sel


def anomaly_scores(values: list[np.ndarray], factor: int) -> tuple[list[int], list[int]]:
    """Squared distance of each update to the unweighted coordinate-wise median of all updates, and
    the indices of those farther than ``factor``^2 times the median such distance.

    The reference ignores sample counts, so a small honest org is not pulled away from a reference
    that the big orgs dominate. The median distance is floored at one fixed-point unit per
    coordinate, so updates that differ only by quantisation noise are never flagged.
    """
    if factor < 1:
        raise AggregationError(f"anomaly factor must be at least 1, got {factor}")
    u = _stack(values)
    ref = coordinate_median(list(u))
    dists = [squared_distance(v, ref) for v in u]
    typical = max(sorted(dists)[(len(dists) - 1) // 2], u.shape[1])
    return dists, [i for i, d in enumerate(dists) if d > factor * factor * typical]


__all__ = ["AggregationError", "WEIGHT_SCALE", "div_round", "fedavg", "fedavg_from_weighted_sum",
           "secure_sum", "dropout_sign", "trimmed_mean", "coordinate_median", "squared_distance",
           "krum_scores", "multi_krum", "anomaly_scores", "from_signed"]
