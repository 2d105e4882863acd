"""Differential privacy: L2 clipping, Gaussian noise, RDP epsilon accounting."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fedfabric_protocol.spec import DPSpec


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


def dp_config(spec: "DPSpec") -> DPConfig | None:
    """The job's DP settings (milli-units on the ledger) as floats, or None when DP is off."""
    if not spec.enabled:
        return None
    return DPConfig(clip_norm=spec.clip_norm_milli / 1000, noise_multiplier=spec.noise_multiplier_milli / 1000,
                    delta=10.0 ** -spec.delta_exp)


def round_epsilon_milli(cfg: DPConfig, r: int) -> int:
    """Milli-ε this org's release in round ``r`` adds (the accountant's ε after r rounds minus after r-1)."""
    if cfg.noise_multiplier <= 0:
        return 10**12
    before = epsilon(cfg, r - 1) if r > 1 else 0.0
    return int(min(epsilon(cfg, r) - before, 1e9) * 1000)
