"""Round keys: the X25519 private key an org registers for each round, kept on disk so a restarted node
rejoins the round it registered for. Files are 0600 in a 0700 directory; keys are never logged."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ..fl import secagg
from ..network.private import private_dir, write_private


class RoundKeys:
    """One org's round keys of one job under ``directory``."""

    def __init__(self, directory: Path, job_id: str, msp_id: str) -> None:
        self.dir, self.job_id, self.msp_id = Path(directory), job_id, msp_id

    def _path(self, r: int) -> Path:
        return self.dir / f"round-{r:06d}.x25519"

    def private(self, r: int) -> Optional[X25519PrivateKey]:
        p = self._path(r)
        return X25519PrivateKey.from_private_bytes(p.read_bytes()) if p.exists() else None

    def public(self, r: int) -> Optional[bytes]:
        priv = self.private(r)
        if priv is None:
            return None
        return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def create(self, r: int) -> bytes:
        """The public key of round ``r``, generating (and persisting) the private key the first time."""
        existing = self.public(r)
        if existing is not None:
            return existing
        priv, pub = secagg.generate_keypair()
        raw = priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        private_dir(self.dir.parent)     # <workdir>/keys
        write_private(self._path(r), raw)
        return pub

    def seeds(self, r: int, public_keys: Mapping[str, str], peers) -> dict[str, bytes]:
        """Pairwise seeds of round ``r`` with ``peers`` (their registered public keys, hex)."""
        priv = self.private(r)
        if priv is None:
            raise KeyError(f"no round key for round {r}")
        ctx = secagg.round_context(self.job_id, r)
        return {p: secagg.pairwise_seed(priv, bytes.fromhex(public_keys[p]), ctx) for p in sorted(peers)
                if p != self.msp_id}
