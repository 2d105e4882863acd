"""FedAvg: the sample-weighted mean of the updates (McMahan et al., 2017)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import codec
from ..errors import refuse
from . import _integer as ints
from .base import Outcome, Rule, register


@register
class FedAvg(Rule):
    name = "fedavg"
    summary = "sample-weighted mean"
    linear = True

    def aggregate(self, rows: np.ndarray, weights: Sequence[int]) -> Outcome:
        return Outcome(ints.weighted_mean(rows, weights), tuple(range(len(rows))))

    def from_weighted_sum(self, total: np.ndarray, total_samples: int) -> np.ndarray:
        """FedAvg from the signed sum of weighted encodings (``update * n_i / WEIGHT_SCALE``; secure mode)."""
        if total_samples <= 0:
            raise refuse("total sample count must be positive")
        return ints.div_round(np.asarray(total, np.int64) * int(codec.WEIGHT_SCALE), int(total_samples))
