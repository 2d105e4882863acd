"""Pairwise masks of secure aggregation, integer side: the one definition the chaincode and the nodes use.

A pairwise seed (32 bytes; the app derives it by X25519 + HKDF) expands to a mask of uint32 words
with SHAKE-256. Convention: org ``me`` adds ``+mask`` for a peer whose id sorts after its own and
``-mask`` for one that sorts before, so every pair's masks cancel in the mod-2^32 sum. Removing the
masks survivors added against a dropped org (from the seeds they revealed) undoes exactly that.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .codec import CodecError, add_mod, sub_mod

SEED_BYTES = 32


def expand_mask(seed: bytes, n: int) -> np.ndarray:
    """Deterministic mask of ``n`` little-endian uint32 words from SHAKE-256(seed)."""
    if len(seed) != SEED_BYTES:
        raise CodecError(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
    return np.frombuffer(hashlib.shake_256(bytes(seed)).digest(4 * int(n)), dtype="<u4").astype(np.uint32)


def mask_sign(me: str, peer: str) -> int:
    """+1 if ``me`` adds the pairwise mask with ``peer``, -1 if it subtracts it."""
    return 1 if peer > me else -1


def apply_mask(words: np.ndarray, mask: np.ndarray, sign: int) -> np.ndarray:
    """``words + sign * mask`` mod 2^32."""
    return add_mod(words, mask) if sign > 0 else sub_mod(words, mask)


def add_masks(encoded: np.ndarray, me: str, seeds: dict[str, bytes]) -> np.ndarray:
    """``encoded`` masked with the pairwise seeds ``{peer: seed}`` of org ``me``."""
    out = np.asarray(encoded, dtype=np.uint32).copy()
    for peer, seed in sorted(seeds.items()):
        if peer == me:
            raise ValueError("peer list contains self")
        out = apply_mask(out, expand_mask(seed, out.size), mask_sign(me, peer))
    return out


def remove_masks(total: np.ndarray, dropped: str, survivor_seeds: dict[str, bytes]) -> np.ndarray:
    """``total`` without the masks survivors added against ``dropped`` (``{survivor: seed}``)."""
    out = np.asarray(total, dtype=np.uint32).copy()
    for survivor, seed in sorted(survivor_seeds.items()):
        out = apply_mask(out, expand_mask(seed, out.size), -mask_sign(survivor, dropped))
    return out
