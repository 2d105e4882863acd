"""Server optimizers: every module of this package defines one and registers it by kind.

``optimizer_from_dict({"kind": "adam", "lr": "0.01"})`` is how the job spec, the chaincode, the nodes
and the simulation get one; an unknown kind is refused with the list of known ones. The stage works
on the aggregate, so it works in secure mode too (the aggregate is all anyone sees).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import codec
from ..registry import Registry
from .base import OPTIMIZERS, ServerOptimizer, pack_state, state_hash, unpack_state

Registry.discover(__name__, __path__)


def optimizer_names() -> list[str]:
    return OPTIMIZERS.names()


def optimizer_from_dict(d: Any, path: str = "spec.server_optimizer") -> ServerOptimizer:
    """The optimizer named by ``d["kind"]`` with its coefficients checked."""
    return OPTIMIZERS.build(d, path)


@dataclass(frozen=True)
class Step:
    """How the model moves after a round (``words``, Q16 like an update) and the optimizer state after
    it (``state``, packed; empty for a job without a server optimizer, whose step is the aggregate)."""

    words: np.ndarray
    state: bytes = b""

    @property
    def hash(self) -> str:
        return codec.sha256_hex(codec.pack(self.words))

    @property
    def state_hash(self) -> str:
        return state_hash(self.state) if self.state else ""


def server_step(opt: Optional[ServerOptimizer], aggregate_words: np.ndarray, state: Optional[bytes]) -> Step:
    """The step of a round whose aggregate is ``aggregate_words``, from the packed ``state`` of the base
    version (None: the zero state of a job's first version)."""
    if opt is None:
        return Step(np.asarray(aggregate_words, np.uint32))
    n = len(aggregate_words)
    before = opt.initial_state(n) if state is None else unpack_state(state, opt.state_names, n)
    upd, after = opt.step(codec.to_signed(aggregate_words), before)
    return Step(codec.from_signed(upd), pack_state(after))


__all__ = ["Step", "server_step", "ServerOptimizer", "optimizer_from_dict", "optimizer_names", "pack_state", "state_hash", "unpack_state"]
