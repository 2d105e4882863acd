"""Fixed-point codec of the app: float encode/decode over the chaincode's integer codec.

Every integer piece (``FRAC_BITS``, ``WEIGHT_SCALE``, pack/unpack, signed views, mod-2^32 sums and the
integer FedAvg of a weighted sum) is the chaincode's own code from ``fedfabric_cc``, re-exported
here, so the app and the endorsing peers agree bit for bit. Only the float side lives here.

Convention: ``encode(x, f)`` = two's complement of ``round_half_even(x * 2**f)`` as int64, mod 2**32.
Weighted updates: each org encodes ``delta_i * n_i / WEIGHT_SCALE``; the mod-2**32 sum over orgs
decodes to ``sum(n_i * delta_i) / WEIGHT_SCALE`` and FedAvg = decoded * WEIGHT_SCALE / sum(n_i).
"""
from __future__ import annotations

import numpy as np

from fedfabric_cc.aggregation import fedavg_from_weighted_sum
from fedfabric_cc.codec import (DTYPE, FRAC_BITS, INT32_MAX, WEIGHT_SCALE, CodecError, add_mod, from_signed,
                                pack, sub_mod, sum_mod, to_signed, unpack)

__all__ = ["FRAC_BITS", "WEIGHT_SCALE", "DTYPE", "CodecError", "FixedPointError", "encode", "decode", "add_mod",
           "sub_mod", "sum_mod", "pack", "unpack", "to_signed", "from_signed", "encode_weighted", "decode_fedavg",
           "fedavg_from_weighted_sum"]


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


def decode_fedavg(total: np.ndarray, total_samples: int, frac_bits: int = FRAC_BITS,
                  weight_scale: int = WEIGHT_SCALE) -> np.ndarray:
    """FedAvg update from the mod-2^32 sum of weighted encodings: the chaincode's integer FedAvg, decoded."""
    avg = fedavg_from_weighted_sum(np.asarray(total, dtype=np.uint32), int(total_samples), int(weight_scale))
    return decode(from_signed(avg), frac_bits)
