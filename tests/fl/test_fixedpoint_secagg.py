import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fedfabric.fl import fixedpoint as fp, secagg
from fedfabric_protocol import aggregate, codec, masks
from fedfabric_protocol.rules import rule_from_dict

FEDAVG = rule_from_dict({"rule": "fedavg"})


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
    assert np.array_equal(masks.expand_mask(s, 10), masks.expand_mask(s, 10))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 40), st.integers(0, 2 ** 31))
def test_secure_sum_equals_plain_bit_for_bit(n, d, seed):
    rng = np.random.default_rng(seed)
    ids, seeds = _setup(n)
    encs = [fp.encode_weighted(rng.normal(0, 1, d), int(rng.integers(1, 500)), headroom=n) for _ in ids]
    plain = np.zeros(d, np.uint32)
    masked = np.zeros(d, np.uint32)
    for i, e in zip(ids, encs):
        plain = codec.add_mod(plain, e)
        m = secagg.mask_update(e, i, seeds[i])
        assert not np.array_equal(m, e)
        masked = codec.add_mod(masked, m)
    assert np.array_equal(plain, masked)


def test_dropout_recovery_exact():
    rng = np.random.default_rng(1)
    ids, seeds = _setup(4)
    encs = {i: fp.encode(rng.normal(0, 1, 50), headroom=4) for i in ids}
    dropped = "org1"
    surv = [i for i in ids if i != dropped]
    total = np.zeros(50, np.uint32)
    for i in surv:
        total = codec.add_mod(total, secagg.mask_update(encs[i], i, seeds[i]))
    plain = np.zeros(50, np.uint32)
    for i in surv:
        plain = codec.add_mod(plain, encs[i])
    assert not np.array_equal(total, plain)
    rec = masks.remove_masks(total, dropped, {i: seeds[i][dropped] for i in surv})
    assert np.array_equal(rec, plain)


def test_weighted_fedavg_convention():
    ups = [np.array([1.0, -2.0]), np.array([3.0, 0.5])]
    ns = [100, 300]
    tot = codec.add_mod(fp.encode_weighted(ups[0], ns[0], headroom=2), fp.encode_weighted(ups[1], ns[1], headroom=2))
    avg = codec.from_signed(FEDAVG.from_weighted_sum(codec.to_signed(tot), 400))
    assert np.allclose(fp.decode(avg), (100 * ups[0] + 300 * ups[1]) / 400, atol=1e-3)


# ---- one codec for both sides: the app's masks ARE the protocol's
def test_the_app_masks_with_the_protocols_code():
    assert secagg.mask_update is masks.add_masks
    assert fp.encode(np.array([1.0])).dtype == np.uint32 and codec.DTYPE == "uint32le"


SEED = bytes(range(32))


def test_frozen_vectors_of_the_wire_format():
    """Bytes both sides must produce, written down once: a change on either side fails here."""
    x = np.array([1.0, -1.0, 0.5, -2.25, 3 / 2 ** 17, 5 / 2 ** 17])  # the last two round half to even
    enc = fp.encode(x)
    assert enc.tolist() == [65536, 4294901760, 32768, 4294819840, 2, 2]
    assert codec.pack(enc).hex() == "000001000000ffff0080000000c0fdff0200000002000000"
    assert masks.expand_mask(SEED, 4).tolist() == [2289889385, 41995840, 956937037, 1530735752]


def test_mask_expansion_from_first_principles():
    import hashlib

    raw = hashlib.shake_256(SEED).digest(4 * 7)
    want = [int.from_bytes(raw[4 * i:4 * i + 4], "little") for i in range(7)]
    assert masks.expand_mask(SEED, 7).tolist() == want
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        masks.expand_mask(b"short", 3)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 5), st.integers(1, 30), st.integers(0, 2 ** 31))
def test_the_secure_aggregate_with_a_dropout_is_fedavg_of_the_survivors_bit_for_bit(n, d, seed):
    """Orgs encode and mask, one drops, the survivors reveal their seeds with it: the protocol's secure
    aggregate equals the integer FedAvg of the survivors' unmasked quantized updates."""
    rng = np.random.default_rng(seed)
    ids, seeds = _setup(n)
    ns = {i: int(rng.integers(1, 500)) for i in ids}
    encs = {i: fp.encode_weighted(rng.normal(0, 1, d), ns[i], headroom=n) for i in ids}
    dropped = [ids[int(rng.integers(0, n))]] if n > 2 else []
    surv = [i for i in ids if i not in dropped]
    masked = {i: secagg.mask_update(encs[i], i, seeds[i]) for i in surv}
    revealed = {(s, x): seeds[s][x] for s in surv for x in dropped}
    got = aggregate.secure_aggregate(FEDAVG, masked, {i: ns[i] for i in surv}, revealed, dropped)
    plain = codec.sum_mod([encs[i] for i in surv])
    want = codec.from_signed(FEDAVG.from_weighted_sum(codec.to_signed(plain), sum(ns[i] for i in surv)))
    assert codec.pack(got.words) == codec.pack(want) and got.contributors == tuple(sorted(surv))
