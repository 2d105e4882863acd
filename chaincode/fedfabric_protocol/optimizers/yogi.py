"""FedYogi: the second moment moves additively toward Δ², v = v − (1−β2)·Δ²·sign(v − Δ²)."""
from __future__ import annotations

import numpy as np

from . import _fixed as fx
from ._adaptive import Adaptive
from .base import register


@register
class FedYogi(Adaptive):
    name = "yogi"
    summary = "adaptive server steps, second moment moved additively"

    def second_moment(self, v, sq):
        return v - fx.mul(sq, fx.ONE - self.q["beta2"]) * np.sign(v - sq)
