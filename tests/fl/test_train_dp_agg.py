import numpy as np
import pytest

from fedfabric.fl import aggregate, dp, models, simulate, train
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


def test_aggregation_rules():
    rng = np.random.default_rng(0)
    honest = [rng.normal(1.0, 0.1, 20) for _ in range(6)]
    ns = [5, 10, 15, 20, 25, 30]
    perm = [3, 0, 5, 1, 4, 2]
    assert np.allclose(aggregate.fedavg(honest, ns), aggregate.fedavg([honest[i] for i in perm], [ns[i] for i in perm]))
    assert np.allclose(aggregate.coordinate_median(honest), aggregate.coordinate_median(honest[::-1]))
    bad = honest + [np.full(20, 1e6)]
    assert np.abs(aggregate.trimmed_mean(bad, 1) - 1.0).max() < 0.5
    assert np.abs(aggregate.coordinate_median(bad) - 1.0).max() < 0.5
    assert np.abs(aggregate.fedavg(bad, [1] * 7) - 1.0).max() > 1000
    _, sel = aggregate.multi_krum(bad, f=1)
    assert 6 not in sel and len(sel) == 6
    with pytest.raises(ValueError):
        aggregate.multi_krum(honest[:3], f=1)


def test_simulation_reproducible_and_secure_matches_plain():
    ds = load_dataset("breast_cancer")
    kw = dict(in_dim=30, n_classes=2)
    a = simulate.run_federated(ds, "logreg", kw, rounds=2, seed=3)
    b = simulate.run_federated(ds, "logreg", kw, rounds=2, seed=3)
    assert a == b
    s = simulate.run_federated(ds, "logreg", kw, rounds=2, seed=3, secure=True)
    assert abs(s[-1]["accuracy"] - a[-1]["accuracy"]) < 0.02
    assert a[-1]["accuracy"] > 0.9
    d = simulate.run_federated(ds, "logreg", kw, rounds=2, seed=3, dp_cfg=dp.DPConfig(noise_multiplier=0.5))
    assert d[1]["epsilon"] > d[0]["epsilon"]
