"""FedAvgM: server momentum on the aggregate (Hsu et al., 2019). m = β·m + Δ; the model moves by lr·m."""
from __future__ import annotations


from . import _fixed as fx
from .base import Coefficient, ServerOptimizer, register


@register
class FedAvgM(ServerOptimizer):
    name = "avgm"
    summary = "server momentum"
    params = {"lr": Coefficient("0.0001", "10", "1", "server learning rate"),
              "momentum": Coefficient("0", "0.999", "0.9", "momentum β")}
    state_names = ("m",)

    def step(self, delta, state):
        m = fx.clamp(fx.mul(state["m"], self.q["momentum"]) + fx.clamp(delta, -fx.DELTA_MAX, fx.DELTA_MAX),
                     -fx.M_MAX, fx.M_MAX)
        return fx.word_range(fx.mul(m, self.q["lr"])), {"m": m}
