"""Model registry, architecture hashing and parameter flattening."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch import nn


def _logreg(in_dim: int, n_classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, n_classes))


def _mlp(in_dim: int, n_classes: int, hidden: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def _cnn(side: int, n_classes: int, channels: int = 8) -> nn.Module:
    feat = channels * 2 * (side // 4) ** 2
    return nn.Sequential(
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(feat, n_classes))


_REGISTRY = {"logreg": _logreg, "mlp": _mlp, "cnn": _cnn}


def build_model(arch_id: str, seed: int = 0, **kwargs) -> nn.Module:
    """Build a registered architecture with seeded initial weights."""
    if arch_id not in _REGISTRY:
        raise KeyError(f"unknown architecture {arch_id!r}")
    torch.manual_seed(seed)
    return _REGISTRY[arch_id](**kwargs)


def architecture_hash(arch_id: str, kwargs: dict) -> str:
    """SHA-256 of the canonical JSON description."""
    desc = json.dumps({"arch": arch_id, "kwargs": kwargs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(desc.encode()).hexdigest()


def parameter_shapes(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """Ordered (name, shape) list."""
    return [(n, tuple(p.shape)) for n, p in model.named_parameters()]


def shape_digest(shapes: list[tuple[str, tuple[int, ...]]]) -> str:
    """SHA-256 of canonical shape list."""
    return hashlib.sha256(json.dumps([[n, list(s)] for n, s in shapes]).encode()).hexdigest()


def model_to_vector(model: nn.Module) -> np.ndarray:
    """Flatten parameters to a float32 vector."""
    return np.concatenate([p.detach().cpu().numpy().ravel() for p in model.parameters()]).astype(np.float32)


def vector_to_model(model: nn.Module, vec: np.ndarray) -> nn.Module:
    """Load a flat vector into the model in place."""
    vec = np.asarray(vec, np.float32)
    total = sum(p.numel() for p in model.parameters())
    if vec.size != total:
        raise ValueError(f"vector has {vec.size} values, model needs {total}")
    i = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(vec[i:i + p.numel()].reshape(p.shape)))
            i += p.numel()
    return model
