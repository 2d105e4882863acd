"""The parameters of a job's model versions on this node: from its artifact store, else rebuilt from the
ledger (the round's aggregate on top of the parent version) or fetched from a participant's node, and
always checked against the hash the ledger recorded. A corrupted or missing local file heals this way."""
from __future__ import annotations

import logging
from typing import Callable, Optional

import numpy as np

from fedfabric_protocol import codec
from fedfabric_protocol.states import Exchange

from ..artifacts import ArtifactError, ArtifactStore, model_hash, vector_from_bytes
from ..client import FedFabricClient, Rejected
from ..fl.recipe import Recipe

log = logging.getLogger("fedfabric.node")

Fetch = Callable[[str, dict], bytes]   # (digest, round report) -> bytes, from one of that round's nodes


class ModelBook:
    """Versions of ``job_id`` by number and hash."""

    def __init__(self, client: FedFabricClient, job_id: str, store: ArtifactStore, initial: np.ndarray,
                 fetch: Optional[Fetch] = None) -> None:
        self.client, self.job_id, self.store, self.initial = client, job_id, store, initial
        self.fetch = fetch

    def get(self, version: int, digest: str, depth: int = 0) -> np.ndarray:
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
        if depth > 64:
            raise ArtifactError(f"version {version}: lineage too deep to rebuild here")
        vec = self._rebuild(version, digest, depth)
        self.store.put_model(vec)
        return vec

    def _rebuild(self, version: int, digest: str, depth: int) -> np.ndarray:
        ver = self.client.get_version(self.job_id, version)
        if ver["model_hash"] != digest:
            raise ArtifactError(f"version {version} has model {ver['model_hash'][:12]}… on the ledger, "
                                f"not {digest[:12]}…")
        if ver.get("exchange") == Exchange.NODES.value:
            if self.fetch is None:
                raise ArtifactError(f"version {version} exchanged its payloads node to node and this node "
                                    "cannot fetch from other nodes")
            data = self.fetch(digest, self.client.round_report(self.job_id, ver["round"]))
            vec = vector_from_bytes(data)
        else:
            parent = self.get(ver["parents"][0], ver["parent_hash"], depth + 1)
            try:
                agg = self.client.get_aggregate(self.job_id, ver["round"])
            except Rejected as exc:
                raise ArtifactError(f"version {version} cannot be rebuilt here: {exc.message}") from None
            if codec.sha256_hex(agg) != ver["aggregate_hash"]:
                raise ArtifactError(f"round {ver['round']}: the aggregate served by this peer is corrupt")
            vec = Recipe.candidate(parent, codec.unpack(agg))
        if model_hash(vec) != digest:
            raise ArtifactError(f"version {version}: rebuilt parameters hash to {model_hash(vec)[:12]}…, the "
                                f"ledger says {digest[:12]}…")
        log.info("version %d rebuilt and verified (%s…)", version, digest[:12])
        return vec
