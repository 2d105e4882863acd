"""FedAdagrad: the second moment accumulates Δ², v = v + Δ² (β1 is 0 by default: m = Δ)."""
from __future__ import annotations

from ._adaptive import COEFFICIENTS, Adaptive
from .base import Coefficient, register


@register
class FedAdagrad(Adaptive):
    name = "adagrad"
    summary = "adaptive server steps with an accumulated second moment"
    params = {**COEFFICIENTS, "beta1": Coefficient("0", "0.999", "0", "first-moment decay β1")}

    def second_moment(self, v, sq):
        return v + sq
