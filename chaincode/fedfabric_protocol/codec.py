"""The fixed-point codec, integer side: the one definition the chaincode and the nodes both use.

Wire format of an update or aggregate: little-endian uint32 words, each the two's complement of a
signed fixed-point value with ``FRAC_BITS`` fractional bits. The app's ``fedfabric.fl.fixedpoint``
adds only the float encode/decode on top, so both sides agree bit
for bit. ``INT32_MIN`` never comes out of the encoder and is reserved as the "non-finite" marker,
so the chaincode rejects it in clear mode.

Weighted updates (secure mode): each org encodes ``update * n_i / WEIGHT_SCALE``; the mod-2^32 sum
over orgs read as signed is ``sum(n_i * update_i) / WEIGHT_SCALE`` and FedAvg is that times
``WEIGHT_SCALE`` over ``sum(n_i)``, rounded half to even (``rules.fedavg``).
"""
from __future__ import annotations

import hashlib

import numpy as np

from .errors import ProtocolError

FRAC_BITS = 16
WEIGHT_SCALE = 1024          # secure mode: each org encodes update * n_i / WEIGHT_SCALE
WORD_BYTES = 4
DTYPE = "uint32le"
MOD = 1 << 32
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
NON_FINITE_MARKER = np.uint32(1 << 31)


class CodecError(ProtocolError):
    """Bytes are not a valid update of the expected length."""


def pack(words: np.ndarray) -> bytes:
    """uint32 array -> little-endian bytes (signed input is taken mod 2^32)."""
    a = np.asarray(words)
    if a.dtype.kind not in "iu":
        raise CodecError(f"pack needs integers, got dtype {a.dtype}")
    return (a.astype(np.int64) % MOD).astype("<u4").tobytes()


def unpack(data: bytes, length: int | None = None) -> np.ndarray:
    """Little-endian bytes -> uint32 array, checking dtype (whole words) and length."""
    if len(data) % WORD_BYTES:
        raise CodecError(f"wrong dtype: {len(data)} bytes is not a whole number of {DTYPE} words")
    n = len(data) // WORD_BYTES
    if length is not None and n != length:
        raise CodecError(f"wrong length: {n} values, expected {length}")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def to_signed(words: np.ndarray) -> np.ndarray:
    """uint32 two's complement -> int64 fixed-point integers."""
    return np.asarray(words, dtype=np.uint32).view(np.int32).astype(np.int64)


def from_signed(values: np.ndarray) -> np.ndarray:
    """int64 fixed-point integers -> uint32 words (mod 2^32)."""
    return (np.asarray(values, dtype=np.int64) % MOD).astype(np.uint32)


def sum_mod(vectors: list[np.ndarray]) -> np.ndarray:
    """Elementwise sum mod 2^32 of equal-length uint32 vectors (order-independent)."""
    if not vectors:
        raise CodecError("nothing to sum")
    total = np.zeros(len(vectors[0]), dtype=np.uint64)
    for v in vectors:
        if len(v) != len(total):
            raise CodecError(f"wrong length: {len(v)} values, expected {len(total)}")
        total = (total + np.asarray(v, dtype=np.uint64)) % MOD
    return total.astype(np.uint32)


def add_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise a + b mod 2^32."""
    return (np.asarray(a, np.uint32) + np.asarray(b, np.uint32)).astype(np.uint32)


def sub_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise a - b mod 2^32."""
    return (np.asarray(a, np.uint32) - np.asarray(b, np.uint32)).astype(np.uint32)


def check_range(words: np.ndarray, max_abs: int) -> None:
    """Reject the non-finite marker and any |value| > ``max_abs`` (fixed-point units)."""
    s = to_signed(words)
    bad = np.flatnonzero(s == INT32_MIN)
    if bad.size:
        raise CodecError(f"non-finite value at index {int(bad[0])}")
    over = np.flatnonzero(np.abs(s) > max_abs)
    if over.size:
        i = int(over[0])
        raise CodecError(f"value out of range at index {i}: |{int(s[i])}| > {max_abs}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shape_digest(shapes: list[list[int]]) -> str:
    """SHA-256 of the canonical JSON of a model's parameter shapes (what both sides compare)."""
    text = "[" + ",".join("[" + ",".join(str(int(d)) for d in s) + "]" for s in shapes) + "]"
    return hashlib.sha256(text.encode()).hexdigest()

