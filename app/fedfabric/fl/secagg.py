"""Pairwise-mask secure aggregation (pure, deterministic)."""
from __future__ import annotations

import hashlib
import logging

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

logger = logging.getLogger(__name__)


def generate_keypair() -> tuple[X25519PrivateKey, bytes]:
    """Fresh X25519 key pair; public key as raw 32 bytes."""
    priv = X25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return priv, pub


def pairwise_seed(my_private: X25519PrivateKey, their_public: bytes, context: bytes) -> bytes:
    """32-byte shared seed: X25519 then HKDF-SHA256 with info=context."""
    shared = my_private.exchange(X25519PublicKey.from_public_bytes(their_public))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(shared)


def expand_mask(seed: bytes, n: int) -> np.ndarray:
    """Deterministic mask of n little-endian uint32 from SHAKE-256(seed)."""
    if len(seed) != 32:
        raise ValueError("seed must be 32 bytes")
    return np.frombuffer(hashlib.shake_256(seed).digest(4 * n), dtype="<u4").astype(np.uint32)


def mask_update(encoded: np.ndarray, my_id: str, peers: dict[str, bytes]) -> np.ndarray:
    """Add +mask for peers with larger id, -mask for smaller (mod 2^32)."""
    out = np.asarray(encoded, dtype=np.uint32).copy()
    for peer, seed in sorted(peers.items()):
        if peer == my_id:
            raise ValueError("peer list contains self")
        m = expand_mask(seed, out.size)
        out = (out + m).astype(np.uint32) if peer > my_id else (out - m).astype(np.uint32)
    return out


def unmask_dropped(total: np.ndarray, dropped_id: str, survivor_seeds: dict[str, bytes]) -> np.ndarray:
    """Remove the masks survivors added against a dropped org (seeds revealed by survivors)."""
    out = np.asarray(total, dtype=np.uint32).copy()
    for surv, seed in survivor_seeds.items():
        m = expand_mask(seed, out.size)
        # survivor added +m if dropped > survivor, else -m: undo it
        out = (out - m).astype(np.uint32) if dropped_id > surv else (out + m).astype(np.uint32)
    return out
