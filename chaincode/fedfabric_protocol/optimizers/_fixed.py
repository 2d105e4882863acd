"""Fixed-point arithmetic of the server-optimizer stage: Q16 vectors in int64, saturating bounds that
keep every product inside int64, rounding right shifts and an exact integer square root.

Values are fixed-point with ``FRAC`` (16) fractional bits, the aggregate's own format, except second
moments, which are Q32 (the square of a Q16 value, unshifted: a small update's square would
otherwise round to a few units), so their square root is Q16 again. Coefficients (learning rate,
betas, tau) are decimals rounded half to even to Q16 once, when the spec is read. Bounds: an
aggregate coordinate is clamped to ±2^23 (±128.0) before squaring, a first moment saturates at
±2^35 (Q16), a second moment at [0, 2^46] (Q32); with betas at most 1 and the learning rate below
2^20 (16.0) no intermediate reaches 2^63.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from ..rules._integer import div_round

FRAC = 16
ONE = 1 << FRAC
DELTA_MAX = 1 << 23
M_MAX = 1 << 35
V_MAX = 1 << 46
WORD_MAX = (1 << 31) - 1


def q16(text: str) -> int:
    """A decimal string as a Q16 integer, rounded half to even."""
    return int((Decimal(text) * ONE).to_integral_value(rounding=ROUND_HALF_EVEN))


def shift(x: np.ndarray, bits: int = FRAC) -> np.ndarray:
    """``x / 2^bits`` rounded half to even."""
    return div_round(x, 1 << bits)


def mul(a: np.ndarray, coeff: int) -> np.ndarray:
    """Q16 vector times a Q16 coefficient, back to Q16."""
    return shift(np.asarray(a, np.int64) * int(coeff))


def clamp(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64), lo, hi)


def square(delta: np.ndarray) -> np.ndarray:
    """Δ² in Q32 (Δ clamped to ±2^23 first)."""
    d = clamp(delta, -DELTA_MAX, DELTA_MAX)
    return d * d


def isqrt(x: np.ndarray) -> np.ndarray:
    """Exact ``floor(sqrt(x))`` of non-negative int64 values below 2^62, digit by digit (31 integer passes)."""
    x = np.asarray(x, np.int64)
    if x.size and (int(x.min()) < 0 or int(x.max()) >= 1 << 62):
        raise ValueError("isqrt needs values in [0, 2^62)")
    r = np.zeros_like(x)
    for b in range(30, -1, -1):
        c = r | (1 << b)
        r = np.where(c * c <= x, c, r)
    return r


def adaptive_step(lr: int, m: np.ndarray, v: np.ndarray, tau: int) -> np.ndarray:
    """``lr * m / (√v + tau)`` in Q16 (``m`` Q16, ``v`` Q32), the divisor at least one unit."""
    num = np.asarray(m, np.int64) * int(lr)                  # Q32
    den = np.maximum(isqrt(v) + int(tau), 1)                 # Q16
    q = np.floor_divide(num, den)
    r = num - q * den
    up = (2 * r > den) | ((2 * r == den) & (q % 2 == 1))
    return q + up.astype(np.int64)


def word_range(u: np.ndarray) -> np.ndarray:
    """An update as words can carry it: int32 without its minimum (the non-finite marker)."""
    return clamp(u, -WORD_MAX, WORD_MAX)
