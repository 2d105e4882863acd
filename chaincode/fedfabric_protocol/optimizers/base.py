"""The server-optimizer stage: one :class:`ServerOptimizer` subclass per module, found by name.

After a round's aggregation rule, the optimizer turns the aggregate Δ (a Q16 vector) and its state
(named Q16 vectors, zero before the first round) into the update actually applied to the model and
the next state. Integer arithmetic only (``_fixed``), so the chaincode and every node compute the
same bits; the state of a job advances only when a version finalizes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from ..fields import Fields
from ..registry import Registry
from . import _fixed


@dataclass(frozen=True)
class Coefficient:
    """A decimal parameter of an optimizer: range, default, meaning."""

    lo: str
    hi: str
    default: str
    doc: str = ""


class ServerOptimizer:
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params: ClassVar[Mapping[str, Coefficient]] = {}
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **values: str) -> None:
        self.values = dict(values)                                   # decimal strings, canonical
        self.q = {k: _fixed.q16(v) for k, v in self.values.items()}  # the same as Q16 integers

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServerOptimizer) and other.to_dict() == self.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in sorted(self.values.items()))})"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> "ServerOptimizer":
        f = Fields(dict(d), path, {"kind", *cls.params})
        return cls(**{n: f.decimal(n, c.lo, c.hi, c.default) for n, c in cls.params.items()})

    def to_dict(self) -> dict:
        return {"kind": self.name, **{k: self.values[k] for k in sorted(self.values)}}

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        return {s: np.zeros(n, np.int64) for s in self.state_names}

    def state_bytes(self, n: int) -> int:
        return 8 * n * len(self.state_names)

    def initial_state_hash(self, n: int) -> str:
        """The hash of the zero state for ``n`` parameters (what version 0 records), without building it."""
        h, left, chunk = hashlib.sha256(), self.state_bytes(n), bytes(1 << 20)
        while left:
            take = min(left, len(chunk))
            h.update(chunk[:take])
            left -= take
        return h.hexdigest()

    def step(self, delta: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(the update to apply, in Q16 within the word range; the next state)."""
        raise NotImplementedError


OPTIMIZERS: Registry[ServerOptimizer] = Registry("server optimizer", "kind", "adam")
register = OPTIMIZERS.register


def pack_state(state: Mapping[str, np.ndarray]) -> bytes:
    """Canonical bytes of a state: its vectors in name order, little-endian int64."""
    return b"".join(np.ascontiguousarray(state[k], dtype="<i8").tobytes() for k in sorted(state))


def unpack_state(data: bytes, names: tuple[str, ...], n: int) -> dict[str, np.ndarray]:
    if len(data) != 8 * n * len(names):
        raise ValueError(f"optimizer state of {len(data)} bytes, expected {8 * n * len(names)}")
    out = {}
    for i, k in enumerate(sorted(names)):
        out[k] = np.frombuffer(data, dtype="<i8", count=n, offset=8 * n * i).astype(np.int64)
    return out


def state_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
