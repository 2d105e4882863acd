"""Differential privacy: L2 clipping, Gaussian noise, RDP epsilon accounting."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DPConfig:
    clip_norm: float = 1.0
    noise_multiplier: float = 1.0
    delta: float = 1e-5
    sampling_rate: float = 1.0


def clip(update: np.ndarray, clip_norm: float) -> np.ndarray:
    """Scale so the L2 norm is at most clip_norm."""
    n = float(np.linalg.norm(update))
    return update if n <= clip_norm else (update * (clip_norm / n)).astype(update.dtype)


def privatize(update: np.ndarray, cfg: DPConfig, rng: np.random.Generator) -> np.ndarray:
    """Clip then add N(0, (noise_multiplier*clip_norm)^2)."""
    c = clip(update, cfg.clip_norm)
    return (c + rng.normal(0, cfg.noise_multiplier * cfg.clip_norm, size=c.shape)).astype(np.float32)


def epsilon(cfg: DPConfig, rounds: int) -> float:
    """Epsilon after `rounds` Poisson-sampled Gaussian steps (RDP accountant)."""
    import dp_accounting
    from dp_accounting.rdp import rdp_privacy_accountant as rdp
    ev = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(cfg.sampling_rate, dp_accounting.GaussianDpEvent(cfg.noise_multiplier)),
        rounds)
    acc = rdp.RdpAccountant()
    acc.compose(ev)
    return float(acc.get_epsilon(cfg.delta))
