"""FedAdam: the second moment is an exponential average of Δ², v = β2·v + (1−β2)·Δ²."""
from __future__ import annotations

from . import _fixed as fx
from ._adaptive import Adaptive
from .base import register


@register
class FedAdam(Adaptive):
    name = "adam"
    summary = "adaptive server steps with first and second moments"

    def second_moment(self, v, sq):
        return fx.mul(v, self.q["beta2"]) + fx.mul(sq, fx.ONE - self.q["beta2"])
