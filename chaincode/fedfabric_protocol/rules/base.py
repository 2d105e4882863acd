"""The extension point: one :class:`Rule` subclass per module, found by name in the registry.

A rule declares its name, its parameters (integer ranges with defaults), whether it works on the
masked sum of secure mode (``linear``), the fewest updates it can take given its parameters, and an
integer kernel. The kernel gets the visible updates (int64 fixed-point rows, in a canonical order)
and their sample counts and returns the aggregate plus which updates it used; it must give the
same bits on every peer and node, whatever order the updates arrive in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..errors import refuse
from ..fields import REQUIRED, Fields
from ..registry import Registry
from ..states import Privacy


@dataclass(frozen=True)
class Param:
    """An integer parameter of a rule: its range, its default (``REQUIRED`` if none) and what it means."""

    lo: int
    hi: int
    default: Any = REQUIRED
    doc: str = ""


@dataclass(frozen=True)
class Outcome:
    """A kernel's result: the aggregate (int64 fixed-point) and the indices of the updates it rests on."""

    aggregate: np.ndarray
    used: tuple[int, ...]


class Rule:
    """An aggregation rule with its parameter values (build one with :meth:`from_dict`)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params: ClassVar[Mapping[str, Param]] = {}
    linear: ClassVar[bool] = False   # the result depends only on the weighted sum: usable in secure mode

    def __init__(self, **values: int) -> None:
        self.values = dict(values)

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and other.to_dict() == self.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in sorted(self.values.items()))})"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> "Rule":
        f = Fields(dict(d), path, {"rule", *cls.params})
        values = {}
        for name, p in cls.params.items():
            if p.default is None and not f.has(name):
                continue
            values[name] = f.int(name, p.lo, p.hi, p.default)
        return cls(**values)

    def to_dict(self) -> dict:
        return {"rule": self.name, **{k: self.values[k] for k in sorted(self.values)}}

    def min_updates(self) -> int:
        """The fewest updates the kernel can aggregate with these parameters."""
        return 1

    def check_feasible(self, min_participants: int, privacy: Privacy, path: str = "spec.aggregation") -> None:
        """Refuse a job whose every round could not apply this rule (checked at create_job)."""
        if privacy is Privacy.SECURE and not self.linear:
            raise refuse(f"{path}.rule '{self.name}' needs visible updates: secure mode supports only "
                         f"rules that work on the masked sum ({', '.join(linear_rule_names())})")
        need = self.min_updates()
        if min_participants < need:
            raise refuse(f"{path}: rule '{self.name}' with {self._describe()} needs at least {need} updates, "
                         f"min_participants is {min_participants}")

    def check_updates(self, n: int) -> None:
        """Refuse ``n`` updates this kernel cannot take."""
        need = self.min_updates()
        if n < need:
            raise refuse(f"rule '{self.name}' with {self._describe()} needs at least {need} updates, got {n}")

    def _describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.values.items())) or "no parameters"

    def aggregate(self, rows: np.ndarray, weights: Sequence[int]) -> Outcome:
        """The kernel: ``rows`` int64 (one update each), ``weights`` their sample counts."""
        raise NotImplementedError

    def from_weighted_sum(self, total: np.ndarray, total_samples: int) -> np.ndarray:
        """Linear rules only: the aggregate from the signed sum of weighted encodings (secure mode)."""
        raise NotImplementedError(f"rule '{self.name}' is not linear")


RULES: Registry[Rule] = Registry("rule", "rule", "fedavg")
register = RULES.register


def linear_rule_names() -> list[str]:
    return sorted(n for n, c in RULES.classes.items() if c.linear)
