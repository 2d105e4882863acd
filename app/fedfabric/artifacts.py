"""Content-addressed model store and the exported model file format.

A model's identity is the SHA-256 of its parameters as little-endian float32 (``model_hash``); that
hash is what the ledger records for every version. The store keeps ``<root>/<h[:2]>/<h>`` files and
verifies the hash on every read, so a corrupted or swapped file is refused, never used.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FORMAT = "fedfabric-model/1"


class ArtifactError(ValueError):
    """A stored or exported artifact is missing, corrupted or not what the ledger says."""


def model_bytes(vec: np.ndarray) -> bytes:
    """Canonical bytes of a parameter vector: little-endian float32."""
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def model_hash(vec: np.ndarray) -> str:
    return hashlib.sha256(model_bytes(vec)).hexdigest()


def vector_from_bytes(data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise ArtifactError(f"{len(data)} bytes is not a whole number of float32 values")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArtifactStore:
    """Blobs by SHA-256 under one directory (one store per org by default)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ArtifactError(f"not a SHA-256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` under its hash; a file already there with other bytes (corrupted) is replaced."""
        digest = hashlib.sha256(data).hexdigest()
        p = self.path(digest)
        if not p.is_file() or p.read_bytes() != data:
            _atomic_write(p, data)
        return digest

    def get(self, digest: str) -> bytes:
        p = self.path(digest)
        if not p.is_file():
            raise ArtifactError(f"artifact {digest[:12]}… is not in the store {self.root}")
        data = p.read_bytes()
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ArtifactError(f"artifact {p} is corrupted: it hashes to {got[:12]}…, expected {digest[:12]}…")
        return data

    def put_model(self, vec: np.ndarray) -> str:
        return self.put(model_bytes(vec))

    def get_model(self, digest: str) -> np.ndarray:
        return vector_from_bytes(self.get(digest))


def export_model(path: Path | str, vec: np.ndarray, *, job_id: str, version: int, arch_id: str,
                 arch_kwargs: dict, lineage: list[dict]) -> dict:
    """Write a ``.pt`` holding the parameters (flat and as a state dict) and their ledger lineage."""
    import torch

    from .fl.models import build_model, vector_to_model

    model = vector_to_model(build_model(arch_id, **arch_kwargs), vec)
    doc = {"format": MODEL_FORMAT, "job_id": job_id, "version": int(version), "model_hash": model_hash(vec),
           "arch_id": arch_id, "arch_kwargs": dict(arch_kwargs), "lineage": lineage,
           "vector": torch.from_numpy(np.asarray(vec, np.float32).copy()),
           "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    torch.save(doc, tmp)
    os.replace(tmp, p)
    return doc


def load_model_file(path: Path | str) -> dict:
    """Read an exported model file; ``vector`` as numpy and ``computed_hash`` recomputed from it.

    Refuses anything that is not a fedfabric model file; does not trust the hash stored inside.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"{p}: no such file")
    try:
        doc = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise ArtifactError(f"{p}: not a readable model file ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ArtifactError(f"{p}: not a fedfabric model file (format {MODEL_FORMAT} expected)")
    for k in ("job_id", "version", "model_hash", "vector", "state_dict", "arch_id", "lineage"):
        if k not in doc:
            raise ArtifactError(f"{p}: model file lacks '{k}'")
    vec = doc["vector"].numpy().astype(np.float32)
    flat = np.concatenate([t.numpy().ravel() for t in doc["state_dict"].values()]).astype(np.float32) \
        if doc["state_dict"] else np.zeros(0, np.float32)
    out: dict[str, Any] = dict(doc)
    out["vector"] = vec
    out["computed_hash"] = model_hash(vec)
    out["state_dict_hash"] = model_hash(flat)
    return out
