import numpy as np
import pytest

from fedfabric.fl import dp, models, train
from fedfabric.fl.datasets import load_dataset


def test_training_reduces_loss_fedprox_record():
    ds = load_dataset("breast_cancer")
    m = models.build_model("logreg", in_dim=30, n_classes=2)
    g = models.model_to_vector(m)
    before = train.evaluate(m, ds.X_train, ds.y_train)["loss"]
    new, up, rec = train.local_train(m, g, ds.X_train[:200], ds.y_train[:200], epochs=3, lr=0.05)
    assert np.allclose(new - g, up)
    assert rec["loss_per_epoch"][-1] < rec["loss_per_epoch"][0]
    assert train.evaluate(m, ds.X_train, ds.y_train)["loss"] < before
    assert rec["samples"] == 200 and rec["iterations"] == 3 * 7 and rec["end"] >= rec["start"]
    _, up_prox, _ = train.local_train(m, g, ds.X_train[:200], ds.y_train[:200], epochs=3, lr=0.05, mu=10.0)
    assert np.linalg.norm(up_prox) < np.linalg.norm(up)


def test_dp_clip_and_epsilon():
    u = np.full(100, 3.0, np.float32)
    assert np.linalg.norm(dp.clip(u, 1.0)) <= 1.0 + 1e-5
    small = np.full(4, 0.1, np.float32)
    assert np.array_equal(dp.clip(small, 1.0), small)
    cfg = dp.DPConfig(clip_norm=1.0, noise_multiplier=1.1, sampling_rate=0.5)
    a, b = dp.privatize(u, cfg, np.random.default_rng(0)), dp.privatize(u, cfg, np.random.default_rng(0))
    assert np.array_equal(a, b)
    eps = [dp.epsilon(cfg, r) for r in (1, 5, 20)]
    assert 0 < eps[0] < eps[1] < eps[2]
    assert dp.epsilon(dp.DPConfig(noise_multiplier=3.0, sampling_rate=0.5), 5) < eps[1]
