"""Property tests: the protocol's integer codec, masks and rule kernels."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fedfabric.fl import fixedpoint, secagg
from fedfabric_protocol import aggregate, codec, masks
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.rules import _integer as ints, rule_from_dict

FEDAVG = rule_from_dict({"rule": "fedavg"})


def fedavg(rows, w):
    return FEDAVG.aggregate(ints.stack(rows), w).aggregate


def multi_krum(rows, f):
    out = rule_from_dict({"rule": "multi_krum", "krum_f": f}).aggregate(ints.stack(rows), [1] * len(rows))
    return out.aggregate, list(out.used)

I32 = st.integers(-(2**31) + 1, 2**31 - 1)
SMALL = st.integers(-(2**20), 2**20)
U32 = st.integers(0, 2**32 - 1)
ORG_IDS = ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP", "Org5MSP"]


def vectors(elem=SMALL, min_n=1, max_n=6, max_len=12):
    return st.integers(1, max_len).flatmap(
        lambda L: st.lists(st.lists(elem, min_size=L, max_size=L), min_size=min_n, max_size=max_n))


def arr(rows):
    return [np.array(r, dtype=np.int64) for r in rows]


@given(st.lists(U32, max_size=50))
def test_pack_unpack_roundtrip(ws):
    a = np.array(ws, dtype=np.uint32)
    assert np.array_equal(codec.unpack(codec.pack(a), len(ws)), a)


@given(st.lists(I32, max_size=50))
def test_signed_roundtrip(vs):
    a = np.array(vs, dtype=np.int64)
    assert np.array_equal(codec.to_signed(codec.from_signed(a)), a)
    assert np.array_equal(codec.unpack(codec.pack(a)), codec.from_signed(a))


def test_unpack_checks_dtype_and_length():
    with pytest.raises(codec.CodecError, match="wrong dtype"):
        codec.unpack(b"\x00" * 7)
    with pytest.raises(codec.CodecError, match="wrong length: 2 values, expected 3"):
        codec.unpack(b"\x00" * 8, 3)


@given(st.lists(st.floats(-1000, 1000, allow_nan=False), min_size=1, max_size=20))
def test_app_encoding_decodes_through_chaincode_signed_view(xs):
    enc = fixedpoint.encode(np.array(xs))
    assert np.array_equal(codec.to_signed(enc) / 2**16, fixedpoint.decode(enc))


@given(vectors(U32, min_n=1), st.randoms())
def test_sum_mod_is_exact_and_order_independent(rows, rnd):
    vs = [np.array(r, dtype=np.uint32) for r in rows]
    want = [sum(col) % 2**32 for col in zip(*rows)]
    assert codec.sum_mod(vs).tolist() == want
    rnd.shuffle(vs)
    assert codec.sum_mod(vs).tolist() == want


@settings(max_examples=40, deadline=None)
@given(vectors(U32, min_n=2, max_n=5), st.lists(st.binary(min_size=32, max_size=32), min_size=10, max_size=10),
       st.data())
def test_secure_sum_equals_clear_sum_and_dropout_recovery_is_exact(rows, seed_pool, data):
    n = len(rows)
    ids = ORG_IDS[:n]
    seeds = {}
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            seeds[(ids[i], ids[j])] = seeds[(ids[j], ids[i])] = seed_pool[k]
            k += 1
    clear = {m: np.array(r, dtype=np.uint32) for m, r in zip(ids, rows)}
    masked = {m: secagg.mask_update(clear[m], m, {o: seeds[(m, o)] for o in ids if o != m}) for m in ids}
    assert np.array_equal(codec.sum_mod(list(masked.values())), codec.sum_mod(list(clear.values())))
    dropped = data.draw(st.sets(st.sampled_from(ids), max_size=n - 1))
    survivors = [m for m in ids if m not in dropped]
    L = len(rows[0])
    got = codec.sum_mod([masked[s] for s in survivors])
    for s in survivors:
        for d in dropped:
            got = masks.apply_mask(got, masks.expand_mask(seeds[(s, d)], L), -masks.mask_sign(s, d))
    assert np.array_equal(got, codec.sum_mod([clear[s] for s in survivors]))


def _half_even(fr: Fraction) -> int:
    return round(fr)  # Fraction rounds half to even


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=30), st.integers(1, 2**20))
def test_div_round_is_half_even_of_the_exact_ratio(nums, den):
    got = ints.div_round(np.array(nums, dtype=np.int64), den).tolist()
    assert got == [_half_even(Fraction(x, den)) for x in nums]


@given(vectors(SMALL), st.data())
def test_fedavg_exact_and_order_independent(rows, data):
    w = data.draw(st.lists(st.integers(1, 10**6), min_size=len(rows), max_size=len(rows)))
    got = fedavg(arr(rows), w)
    want = [_half_even(Fraction(sum(wi * r[c] for wi, r in zip(w, rows)), sum(w))) for c in range(len(rows[0]))]
    assert got.tolist() == want
    perm = data.draw(st.permutations(range(len(rows))))
    assert fedavg(arr([rows[i] for i in perm]), [w[i] for i in perm]).tolist() == want


@given(vectors(SMALL, min_n=1, max_n=5), st.integers(1, 10**4), st.integers(1, 10**4))
def test_secure_weighted_sum_decodes_to_fedavg_of_the_same_quantized_updates(rows, a, b):
    # weighted words w_i = x_i * n_i / SCALE exactly when n_i is a multiple of SCALE
    n = [codec.WEIGHT_SCALE * (1 + (i * a + b) % 7) for i in range(len(rows))]
    weighted = [codec.from_signed(np.array(r, np.int64) * (ni // codec.WEIGHT_SCALE)) for r, ni in zip(rows, n)]
    total = codec.sum_mod(weighted)
    if np.any(np.abs(codec.to_signed(total).astype(object)) >= 2**31 - 1):
        return
    assert np.array_equal(FEDAVG.from_weighted_sum(codec.to_signed(total), sum(n)), fedavg(arr(rows), n))


@given(vectors(SMALL, min_n=3, max_n=7), st.data())
def test_trimmed_mean_and_median_are_exact_and_order_independent(rows, data):
    trim = data.draw(st.integers(0, (len(rows) - 1) // 2))
    cols = [sorted(c) for c in zip(*rows)]
    n = len(rows)
    want_tm = [_half_even(Fraction(sum(c[trim:n - trim]), n - 2 * trim)) for c in cols]
    want_md = [c[n // 2] if n % 2 else _half_even(Fraction(c[n // 2 - 1] + c[n // 2], 2)) for c in cols]
    perm = data.draw(st.permutations(range(n)))
    median = rule_from_dict({"rule": "median"})
    for order in (range(n), perm):
        vs = ints.stack(arr([rows[i] for i in order]))
        if trim:
            tm = rule_from_dict({"rule": "trimmed_mean", "trim": trim})
            assert tm.aggregate(vs, [1] * n).aggregate.tolist() == want_tm
        assert ints.mean(np.sort(vs, axis=0)[trim:n - trim]).tolist() == want_tm
        assert median.aggregate(vs, [1] * n).aggregate.tolist() == want_md


@given(vectors(I32, min_n=2, max_n=2, max_len=40))
def test_squared_distance_is_exact(rows):
    a, b = rows
    assert ints.squared_distance(np.array(a), np.array(b)) == sum((x - y) ** 2 for x, y in zip(a, b))


@settings(max_examples=60)
@given(vectors(SMALL, min_n=5, max_n=8, max_len=6), st.data())
def test_multi_krum_is_order_independent(rows, data):
    f = data.draw(st.integers(0, (len(rows) - 3) // 2))
    out, sel = multi_krum(arr(rows), f)
    perm = data.draw(st.permutations(range(len(rows))))
    out2, sel2 = multi_krum(arr([rows[i] for i in perm]), f)
    assert out.tolist() == out2.tolist()
    assert sorted(tuple(rows[i]) for i in sel) == sorted(tuple(rows[perm[i]]) for i in sel2)


def test_multi_krum_drops_the_outlier_and_checks_sizes():
    vs = arr([[0, 0], [1, 1], [2, 0], [1, 2], [1000, 1000]])
    out, sel = multi_krum(vs, 1)
    assert sel == [0, 1, 2, 3] and out.tolist() == [1, 1]
    with pytest.raises(ProtocolError, match="needs at least 5 updates, got 4"):
        multi_krum(vs[:4], 1)
    with pytest.raises(ProtocolError, match="needs at least 3 updates, got 2"):
        rule_from_dict({"rule": "trimmed_mean", "trim": 1}).aggregate(ints.stack(vs[:2]), [1, 1])
    with pytest.raises(ProtocolError, match="wrong length"):
        ints.stack([np.zeros(2, np.int64), np.zeros(3, np.int64)])
