import numpy as np
import pytest
import torch

from fedfabric.fl import datasets, models, partition


@pytest.mark.parametrize("arch,kw,shape", [("logreg", dict(in_dim=30, n_classes=2), (5, 30)),
                                          ("mlp", dict(in_dim=64, n_classes=10), (5, 64)),
                                          ("cnn", dict(side=28, n_classes=10), (5, 784)),
                                          ("cnn", dict(side=8, n_classes=10), (5, 64))])
def test_forward_and_vector_roundtrip(arch, kw, shape):
    m = models.build_model(arch, seed=1, **kw)
    assert m(torch.zeros(shape)).shape == (5, kw["n_classes"])
    v = models.model_to_vector(m)
    assert v.dtype == np.float32
    m2 = models.vector_to_model(models.build_model(arch, seed=2, **kw), v)
    assert np.array_equal(models.model_to_vector(m2), v)
    assert sum(int(np.prod(s)) for _, s in models.parameter_shapes(m)) == v.size
    with pytest.raises(ValueError):
        models.vector_to_model(m, v[:-1])


def test_hashes():
    h = models.architecture_hash("mlp", {"in_dim": 4, "n_classes": 2})
    assert h == models.architecture_hash("mlp", {"n_classes": 2, "in_dim": 4})
    assert h != models.architecture_hash("mlp", {"in_dim": 5, "n_classes": 2})
    a = models.parameter_shapes(models.build_model("logreg", in_dim=3, n_classes=2))
    b = models.parameter_shapes(models.build_model("logreg", in_dim=4, n_classes=2))
    assert models.shape_digest(a) != models.shape_digest(b)


def test_dataset_and_fingerprint():
    ds = datasets.load_dataset("breast_cancer", seed=0)
    assert abs(ds.X_train.mean()) < 1e-5 and ds.n_classes == 2
    assert datasets.data_fingerprint(ds.X_train, ds.y_train) == datasets.data_fingerprint(ds.X_train.copy(), ds.y_train)
    X2 = ds.X_train.copy(); X2[0, 0] += 1
    assert datasets.data_fingerprint(X2, ds.y_train) != datasets.data_fingerprint(ds.X_train, ds.y_train)
    c = datasets.load_dataset("credit_synth")
    assert c.X_train.shape[1] == 12


def test_partitioners():
    y = np.repeat(np.arange(10), 50)
    for p in (partition.iid(y, 4, 0), partition.dirichlet(y, 4, 0.5, 0, min_size=20), partition.by_label(y, 4, 0)):
        allidx = np.concatenate(p)
        assert len(allidx) == len(y) == len(np.unique(allidx))
    assert all(len(q) >= 20 for q in partition.dirichlet(y, 4, 0.1, 3, min_size=20))
    a, b = partition.dirichlet(y, 4, 0.5, 7), partition.dirichlet(y, 4, 0.5, 7)
    assert all(np.array_equal(x, z) for x, z in zip(a, b))

    def skew(alpha):  # mean over orgs of max class share
        return np.mean([[np.bincount(y[q], minlength=10).max() / len(q) for q in partition.dirichlet(y, 4, alpha, s)]
                        for s in range(5)])
    assert skew(0.1) > skew(100.0) + 0.2
    labs = [set(y[q]) for q in partition.by_label(y, 4, 0)]
    assert all(not (labs[i] & labs[j]) for i in range(4) for j in range(i + 1, 4))


def test_partition_errors_name_the_org_left_without_data():
    y = np.repeat([0, 1], 100)
    with pytest.raises(partition.PartitionError) as ei:
        partition.by_label(y, 3, 0)
    assert (ei.value.org, ei.value.size) == (2, 0) and "org #3 would get no data" in str(ei.value)
    with pytest.raises(partition.PartitionError) as ei:
        partition.dirichlet(y, 3, 0.001, 0)
    assert 0 <= ei.value.org < 3 and ei.value.size < 10 and "raise alpha" in str(ei.value)
    assert isinstance(ei.value, ValueError)          # callers catching ValueError keep working
