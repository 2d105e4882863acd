"""Fixed-point codec, float side: what an org's node turns its float update into (and back).

The integer side (word format, ``FRAC_BITS``, ``WEIGHT_SCALE``, packing, mod-2^32 sums) is the
protocol's ``fedfabric_protocol.codec``, which the endorsing peers use too, so both agree bit for bit.

Convention: ``encode(x, f)`` = two's complement of ``round_half_even(x * 2**f)`` as int64, mod 2**32.
Weighted updates (secure mode): each org encodes ``delta_i * n_i / WEIGHT_SCALE``; the mod-2**32 sum
over orgs decodes to ``sum(n_i * delta_i) / WEIGHT_SCALE`` and FedAvg = decoded * WEIGHT_SCALE / sum(n_i).
"""
from __future__ import annotations

import numpy as np

from fedfabric_protocol.codec import FRAC_BITS, INT32_MAX, WEIGHT_SCALE, from_signed, to_signed


class FixedPointError(ValueError):
    """Value cannot be encoded (non-finite or out of range)."""


def encode(x: np.ndarray, frac_bits: int = FRAC_BITS, headroom: int = 1) -> np.ndarray:
    """Encode floats to uint32; |x*2^f| * headroom must fit a signed int32."""
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise FixedPointError("non-finite value in update")
    q = np.round(a * float(1 << frac_bits))  # numpy rounds half to even
    limit = INT32_MAX // max(1, int(headroom))
    if q.size and float(np.max(np.abs(q))) > limit:
        raise FixedPointError(f"value out of range: |x*2^{frac_bits}| exceeds {limit} (headroom={headroom})")
    return from_signed(q.astype(np.int64))


def decode(u: np.ndarray, frac_bits: int = FRAC_BITS) -> np.ndarray:
    """Decode uint32 (as signed int32) to float64."""
    return to_signed(u).astype(np.float64) / float(1 << frac_bits)


def encode_weighted(update: np.ndarray, n_samples: int, frac_bits: int = FRAC_BITS,
                    headroom: int = 1, weight_scale: int = WEIGHT_SCALE) -> np.ndarray:
    """Encode ``update * n_samples / weight_scale``."""
    return encode(np.asarray(update, np.float64) * n_samples / weight_scale, frac_bits, headroom)
