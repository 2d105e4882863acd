"""Multi-Krum: the mean of the ``m`` updates with the lowest Krum scores (Blanchard et al., 2017).

A Krum score is the sum of an update's ``n - f - 2`` smallest squared distances to the others, for
at most ``f`` Byzantine updates; ``m`` defaults to ``n - f``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import refuse
from . import _integer as ints
from .base import Outcome, Param, Rule, register


@register
class MultiKrum(Rule):
    name = "multi_krum"
    summary = "mean of the m updates with the lowest Krum scores"
    params = {"krum_f": Param(0, 1000, doc="Byzantine updates tolerated"),
              "krum_m": Param(1, 1000, default=None, doc="updates averaged (default n - f)")}

    def min_updates(self) -> int:
        return max(2 * self["krum_f"] + 3, self.values.get("krum_m", 0) + self["krum_f"])

    def aggregate(self, rows: np.ndarray, weights: Sequence[int]) -> Outcome:
        self.check_updates(len(rows))
        n, f = len(rows), self["krum_f"]
        m = self.values.get("krum_m", n - f)
        if not 1 <= m <= n - f:
            raise refuse(f"Multi-Krum krum_m={m} must be between 1 and n - f = {n - f}")
        scores = ints.krum_scores(ints.distance_matrix(rows), f)
        chosen = sorted(ints.order_by_score(rows, scores)[:m])
        return Outcome(ints.mean(rows[chosen]), tuple(chosen))
