"""Pairwise-mask secure aggregation: X25519 + HKDF key agreement here, masks from the chaincode.

Mask expansion, the +/- sign convention, masking and dropout recovery are ``fedfabric_cc.masks``
(re-exported under the app's names), so what an org adds is exactly what the endorsing peers remove.
"""
from __future__ import annotations

import logging

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedfabric_cc.masks import SEED_BYTES, add_masks, expand_mask, mask_sign, remove_masks

logger = logging.getLogger(__name__)

mask_update = add_masks          # (encoded, my_id, {peer: seed}) -> masked words
unmask_dropped = remove_masks    # (total, dropped_id, {survivor: seed}) -> total without their masks

__all__ = ["generate_keypair", "pairwise_seed", "expand_mask", "mask_sign", "mask_update", "unmask_dropped",
           "SEED_BYTES"]


def generate_keypair() -> tuple[X25519PrivateKey, bytes]:
    """Fresh X25519 key pair; public key as raw 32 bytes."""
    priv = X25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return priv, pub


def pairwise_seed(my_private: X25519PrivateKey, their_public: bytes, context: bytes) -> bytes:
    """32-byte shared seed: X25519 then HKDF-SHA256 with info=context."""
    shared = my_private.exchange(X25519PublicKey.from_public_bytes(their_public))
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=context).derive(shared)
