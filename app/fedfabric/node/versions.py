"""The parameters of a job's model versions on this node, and the server optimizer's state after each: from
its artifact store, else fetched by hash from another member's node (every node keeps the versions it
took part in), and always checked against the hash the ledger recorded. A corrupted or missing local
file heals this way."""
from __future__ import annotations

import hashlib
import logging
from typing import Callable, Optional

import numpy as np

from ..artifacts import ArtifactError, ArtifactStore, model_hash, vector_from_bytes
from ..client import FedFabricClient

log = logging.getLogger("fedfabric.node")

Fetch = Callable[[str, dict, int], bytes]   # (digest, round report, max bytes) -> bytes, from one of its nodes


class ModelBook:
    """Versions of ``job_id`` by number and hash."""

    def __init__(self, client: FedFabricClient, job_id: str, store: ArtifactStore, initial: np.ndarray,
                 fetch: Optional[Fetch] = None) -> None:
        self.client, self.job_id, self.store, self.initial = client, job_id, store, initial
        self.fetch = fetch

    def get(self, version: int, digest: str) -> np.ndarray:
        """Version ``version`` whose parameters hash to ``digest`` (:class:`ArtifactError` if impossible)."""
        if version == 0:
            if model_hash(self.initial) != digest:
                raise ArtifactError(f"initial model hash {model_hash(self.initial)[:12]}… is not the ledger's "
                                    f"{digest[:12]}…")
            return self.initial
        try:
            return self.store.get_model(digest)
        except ArtifactError as exc:
            if self.store.has(digest):
                log.warning("%s; rebuilding version %d from the ledger", exc, version)
        vec = self._rebuild(version, digest)
        self.store.put_model(vec)
        return vec

    def _rebuild(self, version: int, digest: str) -> np.ndarray:
        ver = self.client.get_version(self.job_id, version)
        if ver["model_hash"] != digest:
            raise ArtifactError(f"version {version} has model {ver['model_hash'][:12]}… on the ledger, "
                                f"not {digest[:12]}…")
        if self.fetch is None:
            raise ArtifactError(f"version {version} is not here and this node cannot fetch from other nodes")
        vec = vector_from_bytes(self.fetch(digest, self.client.round_report(self.job_id, ver["round"]),
                                           len(self.initial) * 4))
        if model_hash(vec) != digest:
            raise ArtifactError(f"version {version}: the fetched parameters hash to {model_hash(vec)[:12]}…, the "
                                f"ledger says {digest[:12]}…")
        log.info("version %d fetched from a member's node and verified (%s…)", version, digest[:12])
        return vec

    def state(self, version: int, digest: str, size: int) -> bytes:
        """The server optimizer's state (``size`` bytes) after version ``version``, hashing to ``digest``."""
        try:
            return self.store.get(digest)
        except ArtifactError as exc:
            if self.store.has(digest):
                log.warning("%s; fetching the optimizer state of version %d again", exc, version)
        if self.fetch is None:
            raise ArtifactError(f"the optimizer state of version {version} is not here and this node cannot fetch "
                                f"from other nodes")
        ver = self.client.get_version(self.job_id, version)
        data = self.fetch(digest, self.client.round_report(self.job_id, ver["round"]), size)
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactError(f"version {version}: the fetched optimizer state is not the one the ledger recorded "
                                f"({digest[:12]}…)")
        self.store.put(data)
        log.info("optimizer state of version %d fetched from a member's node and verified (%s…)", version, digest[:12])
        return data
