import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fedfabric.fl import fixedpoint as fp, secagg


def test_roundtrip():
    x = np.array([0.0, 1.5, -2.25, 1e-5, -3000.0])
    assert np.allclose(fp.decode(fp.encode(x)), x, atol=2 ** -17)
    assert fp.encode(np.array([-1.0]))[0] == 2 ** 32 - 2 ** 16


def test_half_even():
    x = np.array([0.5, 1.5, 2.5]) / 2 ** 16
    assert fp.encode(x).tolist() == [0, 2, 2]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite(bad):
    with pytest.raises(fp.FixedPointError, match="non-finite"):
        fp.encode(np.array([1.0, bad]))


def test_overflow_and_headroom():
    with pytest.raises(fp.FixedPointError, match="out of range"):
        fp.encode(np.array([40000.0]))
    fp.encode(np.array([1000.0]))
    with pytest.raises(fp.FixedPointError):
        fp.encode(np.array([1000.0]), headroom=64)


def _setup(n, ctx=b"job1|r3"):
    ids = [f"org{i}" for i in range(n)]
    keys = {i: secagg.generate_keypair() for i in ids}
    seeds = {i: {j: secagg.pairwise_seed(keys[i][0], keys[j][1], ctx) for j in ids if j != i} for i in ids}
    return ids, seeds


def test_seed_symmetric_and_context():
    a, b = secagg.generate_keypair(), secagg.generate_keypair()
    s = secagg.pairwise_seed(a[0], b[1], b"x")
    assert s == secagg.pairwise_seed(b[0], a[1], b"x") and len(s) == 32
    assert s != secagg.pairwise_seed(a[0], b[1], b"y")
    assert np.array_equal(secagg.expand_mask(s, 10), secagg.expand_mask(s, 10))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 40), st.integers(0, 2 ** 31))
def test_secure_sum_equals_plain_bit_for_bit(n, d, seed):
    rng = np.random.default_rng(seed)
    ids, seeds = _setup(n)
    encs = [fp.encode_weighted(rng.normal(0, 1, d), int(rng.integers(1, 500)), headroom=n) for _ in ids]
    plain = np.zeros(d, np.uint32)
    masked = np.zeros(d, np.uint32)
    for i, e in zip(ids, encs):
        plain = fp.add_mod(plain, e)
        m = secagg.mask_update(e, i, seeds[i])
        assert not np.array_equal(m, e)
        masked = fp.add_mod(masked, m)
    assert np.array_equal(plain, masked)


def test_dropout_recovery_exact():
    rng = np.random.default_rng(1)
    ids, seeds = _setup(4)
    encs = {i: fp.encode(rng.normal(0, 1, 50), headroom=4) for i in ids}
    dropped = "org1"
    surv = [i for i in ids if i != dropped]
    total = np.zeros(50, np.uint32)
    for i in surv:
        total = fp.add_mod(total, secagg.mask_update(encs[i], i, seeds[i]))
    plain = np.zeros(50, np.uint32)
    for i in surv:
        plain = fp.add_mod(plain, encs[i])
    assert not np.array_equal(total, plain)
    rec = secagg.unmask_dropped(total, dropped, {i: seeds[i][dropped] for i in surv})
    assert np.array_equal(rec, plain)


def test_weighted_fedavg_convention():
    ups = [np.array([1.0, -2.0]), np.array([3.0, 0.5])]
    ns = [100, 300]
    tot = fp.add_mod(fp.encode_weighted(ups[0], ns[0], headroom=2), fp.encode_weighted(ups[1], ns[1], headroom=2))
    assert np.allclose(fp.decode_fedavg(tot, 400), (100 * ups[0] + 300 * ups[1]) / 400, atol=1e-3)
