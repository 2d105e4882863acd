"""Coordinate-wise median of the updates (Yin et al., 2018)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _integer as ints
from .base import Outcome, Rule, register


@register
class Median(Rule):
    name = "median"
    summary = "coordinate-wise median"

    def aggregate(self, rows: np.ndarray, weights: Sequence[int]) -> Outcome:
        return Outcome(ints.coordinate_median(rows), tuple(range(len(rows))))
