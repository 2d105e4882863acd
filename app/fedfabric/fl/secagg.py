"""Pairwise-mask secure aggregation, key side: X25519 + HKDF key agreement.

Mask expansion, the +/- sign convention and masking are the protocol's ``fedfabric_protocol.masks``,
so what an org adds is exactly what the endorsing peers (and the other nodes) remove.
"""
from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedfabric_protocol.masks import SEED_BYTES, add_masks

mask_update = add_masks          # (encoded, my_id, {peer: seed}) -> masked words

__all__ = ["generate_keypair", "pairwise_seed", "mask_update", "round_context", "SEED_BYTES"]


def generate_keypair() -> tuple[X25519PrivateKey, bytes]:
    """Fresh X25519 key pair; public key as raw 32 bytes."""
    priv = X25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return priv, pub


def round_context(job_id: str, r: int) -> bytes:
    """The HKDF info binding a pairwise seed to one round of one job."""
    return f"{job_id}|{r}".encode()


def pairwise_seed(my_private: X25519PrivateKey, their_public: bytes, context: bytes) -> bytes:
    """32-byte shared seed: X25519 then HKDF-SHA256 with info=context."""
    shared = my_private.exchange(X25519PublicKey.from_public_bytes(their_public))
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=context).derive(shared)
