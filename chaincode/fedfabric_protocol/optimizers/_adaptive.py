"""The adaptive family (Reddi et al., 2021, "Adaptive Federated Optimization"): one step, three ways to
move the second moment. m = β1·m + (1−β1)·Δ; v from :meth:`Adaptive.second_moment`; the model moves
by lr·m / (√v + τ)."""
from __future__ import annotations

import numpy as np

from . import _fixed as fx
from .base import Coefficient, ServerOptimizer

COEFFICIENTS = {"lr": Coefficient("0.0001", "10", "0.01", "server learning rate η"),
                "beta1": Coefficient("0", "0.999", "0.9", "first-moment decay β1"),
                "beta2": Coefficient("0", "0.9999", "0.99", "second-moment decay β2"),
                "tau": Coefficient("0.00002", "1", "0.001", "adaptivity τ (at least one Q16 unit)")}


class Adaptive(ServerOptimizer):
    params = COEFFICIENTS
    state_names = ("m", "v")

    def second_moment(self, v: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """The next second moment (Q32, unclamped) from the last one and Δ² (both Q32)."""
        raise NotImplementedError

    def step(self, delta, state):
        d = fx.clamp(delta, -fx.DELTA_MAX, fx.DELTA_MAX)
        m = fx.clamp(fx.mul(state["m"], self.q["beta1"]) + fx.mul(d, fx.ONE - self.q["beta1"]), -fx.M_MAX, fx.M_MAX)
        v = fx.clamp(self.second_moment(state["v"], fx.square(d)), 0, fx.V_MAX)
        return fx.word_range(fx.adaptive_step(self.q["lr"], m, v, self.q["tau"])), {"m": m, "v": v}
