"""Krum: the one update with the lowest Krum score (Blanchard et al., 2017), for at most ``krum_f``
Byzantine updates among n >= 2f + 3."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _integer as ints
from .base import Outcome, Param, Rule, register


@register
class Krum(Rule):
    name = "krum"
    summary = "the update closest to its n - f - 2 nearest neighbours"
    params = {"krum_f": Param(0, 1000, doc="Byzantine updates tolerated")}

    def min_updates(self) -> int:
        return 2 * self["krum_f"] + 3

    def aggregate(self, rows: np.ndarray, weights: Sequence[int]) -> Outcome:
        self.check_updates(len(rows))
        scores = ints.krum_scores(ints.distance_matrix(rows), self["krum_f"])
        best = ints.order_by_score(rows, scores)[0]
        return Outcome(rows[best].copy(), (best,))
