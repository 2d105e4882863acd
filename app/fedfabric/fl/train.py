"""Local training (FedAvg / FedProx) and evaluation."""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from .datasets import data_fingerprint
from .models import model_to_vector, vector_to_model

logger = logging.getLogger(__name__)


def local_train(model: nn.Module, global_vec: np.ndarray, X: np.ndarray, y: np.ndarray, *,
                epochs: int = 1, lr: float = 0.05, batch_size: int = 32, optimizer: str = "sgd",
                mu: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Train from ``global_vec``; mu>0 adds the FedProx term. Returns (new, update, record)."""
    start = time.time()
    torch.manual_seed(seed)
    vector_to_model(model, global_vec)
    anchor = [p.detach().clone() for p in model.parameters()]
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    Xt, yt = torch.from_numpy(np.asarray(X, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    gen = torch.Generator().manual_seed(seed)
    losses, iters = [], 0
    model.train()
    for _ in range(epochs):
        perm, tot = torch.randperm(len(yt), generator=gen), 0.0
        for i in range(0, len(yt), batch_size):
            b = perm[i:i + batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(Xt[b]), yt[b])
            tot += float(loss.detach()) * len(b)
            if mu > 0:
                loss = loss + mu / 2 * sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
            loss.backward()
            opt.step()
            iters += 1
        losses.append(tot / len(yt))
    new = model_to_vector(model)
    record = {"start": start, "end": time.time(), "epochs": epochs, "iterations": iters,
              "loss_per_epoch": losses, "samples": int(len(yt)), "data_fingerprint": data_fingerprint(X, y)}
    return new, (new - np.asarray(global_vec, np.float32)), record


@torch.no_grad()
def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, cross-entropy loss, macro F1."""
    model.eval()
    out = model(torch.from_numpy(np.asarray(X, np.float32)))
    yt = torch.from_numpy(np.asarray(y, np.int64))
    pred = out.argmax(1).numpy()
    return {"accuracy": float((pred == y).mean()), "loss": float(nn.functional.cross_entropy(out, yt)),
            "f1": float(f1_score(y, pred, average="macro"))}
