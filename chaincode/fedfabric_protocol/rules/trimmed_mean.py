"""Coordinate-wise trimmed mean: drop the ``trim`` largest and smallest values, average the rest (Yin et al., 2018)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _integer as ints
from .base import Outcome, Param, Rule, register


@register
class TrimmedMean(Rule):
    name = "trimmed_mean"
    summary = "coordinate-wise mean without the trim largest and smallest values"
    params = {"trim": Param(1, 1000, doc="values dropped at each end of every coordinate")}

    def min_updates(self) -> int:
        return 2 * self["trim"] + 1

    def aggregate(self, rows: np.ndarray, weights: Sequence[int]) -> Outcome:
        self.check_updates(len(rows))
        t = self["trim"]
        kept = np.sort(rows, axis=0)[t:len(rows) - t]
        return Outcome(ints.mean(kept), tuple(range(len(rows))))
