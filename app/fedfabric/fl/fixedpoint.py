"""Fixed-point codec shared with the chaincode (pure numpy).

Convention: ``encode(x, f)`` = two's complement of ``round_half_even(x * 2**f)`` as int64, mod 2**32.
Weighted updates: each org encodes ``delta_i * n_i / WEIGHT_SCALE``; the mod-2**32 sum over orgs
decodes to ``sum(n_i * delta_i) / WEIGHT_SCALE`` and FedAvg = decoded * WEIGHT_SCALE / sum(n_i).
"""
from __future__ import annotations

import numpy as np

FRAC_BITS = 16
WEIGHT_SCALE = 1024.0
_MOD = 1 << 32


class FixedPointError(ValueError):
    """Value cannot be encoded (non-finite or out of range)."""


def encode(x: np.ndarray, frac_bits: int = FRAC_BITS, headroom: int = 1) -> np.ndarray:
    """Encode floats to uint32; |x*2^f| * headroom must fit a signed int32."""
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise FixedPointError("non-finite value in update")
    q = np.round(a * float(1 << frac_bits))  # numpy rounds half to even
    limit = (2**31 - 1) // max(1, int(headroom))
    if q.size and float(np.max(np.abs(q))) > limit:
        raise FixedPointError(f"value out of range: |x*2^{frac_bits}| exceeds {limit} (headroom={headroom})")
    return (q.astype(np.int64) % _MOD).astype(np.uint32)


def decode(u: np.ndarray, frac_bits: int = FRAC_BITS) -> np.ndarray:
    """Decode uint32 (as signed int32) to float64."""
    return np.asarray(u, dtype=np.uint32).view(np.int32).astype(np.float64) / float(1 << frac_bits)


def add_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise sum mod 2^32."""
    return (np.asarray(a, np.uint32) + np.asarray(b, np.uint32)).astype(np.uint32)


def encode_weighted(update: np.ndarray, n_samples: int, frac_bits: int = FRAC_BITS,
                    headroom: int = 1, weight_scale: float = WEIGHT_SCALE) -> np.ndarray:
    """Encode ``update * n_samples / weight_scale``."""
    return encode(np.asarray(update, np.float64) * n_samples / weight_scale, frac_bits, headroom)


def decode_fedavg(total: np.ndarray, total_samples: int, frac_bits: int = FRAC_BITS,
                  weight_scale: float = WEIGHT_SCALE) -> np.ndarray:
    """FedAvg update from the mod-2^32 sum of weighted encodings."""
    return decode(total, frac_bits) * weight_scale / float(total_samples)
