"""The server-optimizer stage: exact integer arithmetic, the registry, each optimizer's behaviour
against a float reference, and the bounds that keep every intermediate inside int64."""
import math

import numpy as np
import pytest

from fedfabric_protocol import codec
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.optimizers import (optimizer_from_dict, optimizer_names, pack_state, server_step,
                                           state_hash, unpack_state)
from fedfabric_protocol.optimizers import _fixed as fx

ONE = fx.ONE


def q(x) -> np.ndarray:
    return np.round(np.asarray(x, np.float64) * ONE).astype(np.int64)


def test_isqrt_is_exact_at_the_edges_and_at_random():
    rng = np.random.default_rng(7)
    edges = [0, 1, 2, 3, 4, 8, 9, 15, 16, 17, 2**32 - 1, 2**32, (2**31 - 1) ** 2, (2**31 - 1) ** 2 - 1, 2**62 - 1]
    xs = np.concatenate([np.array(edges, np.int64), rng.integers(0, 2**62, 2000, dtype=np.int64),
                         rng.integers(0, 2**20, 2000, dtype=np.int64)])
    assert fx.isqrt(xs).tolist() == [math.isqrt(int(x)) for x in xs]


@pytest.mark.parametrize("bad", [[-1], [2**62]])
def test_isqrt_refuses_values_out_of_range(bad):
    with pytest.raises(ValueError, match="isqrt needs values"):
        fx.isqrt(np.array(bad, np.int64))


def test_coefficients_are_rounded_half_to_even_once():
    assert fx.q16("1") == ONE and fx.q16("0.5") == ONE // 2
    assert fx.q16(str(1 / (2 * ONE))) == 0 and fx.q16(str(3 / (2 * ONE))) == 2


def test_registry_lists_every_optimizer_and_refuses_others_by_name():
    assert optimizer_names() == ["adagrad", "adam", "avgm", "yogi"]
    with pytest.raises(ProtocolError, match=r"unknown server optimizer 'adamw' \(known: adagrad, adam, avgm, yogi\)"):
        optimizer_from_dict({"kind": "adamw"})
    with pytest.raises(ProtocolError, match="unknown server optimizer"):
        optimizer_from_dict({"kind": ["adam"]})


@pytest.mark.parametrize("d, match", [({"kind": "adam", "lr": "11"}, "out of range"),
                                      ({"kind": "adam", "lr": 0.5}, "decimal string"),
                                      ({"kind": "adam", "tau": "0"}, "out of range"),
                                      ({"kind": "avgm", "beta2": "0.9"}, "unknown field"),
                                      ({"kind": "yogi", "lr": "NaN"}, "out of range|not a decimal")])
def test_bad_coefficients_are_refused(d, match):
    with pytest.raises(ProtocolError, match=match):
        optimizer_from_dict(d)


@pytest.mark.parametrize("kind", ["avgm", "adam", "yogi", "adagrad"])
def test_settings_round_trip_canonically(kind):
    o = optimizer_from_dict({"kind": kind, "lr": "0.050"})
    assert o.to_dict()["lr"] == "0.05" and optimizer_from_dict(o.to_dict()) == o


def test_state_packs_in_name_order_and_unpacks_back():
    st = {"v": np.array([5, 6], np.int64), "m": np.array([-1, 2**40], np.int64)}
    data = pack_state(st)
    assert data[:8] == (-1).to_bytes(8, "little", signed=True)
    back = unpack_state(data, ("m", "v"), 2)
    assert {k: v.tolist() for k, v in back.items()} == {k: v.tolist() for k, v in st.items()}
    with pytest.raises(ValueError, match="expected 32"):
        unpack_state(data[:-1], ("m", "v"), 2)


@pytest.mark.parametrize("kind", ["avgm", "adam", "yogi", "adagrad"])
def test_zero_state_hash_is_the_hash_of_the_packed_zero_state(kind):
    o = optimizer_from_dict({"kind": kind})
    assert o.initial_state_hash(1234) == state_hash(pack_state(o.initial_state(1234)))


def test_without_an_optimizer_the_step_is_the_aggregate():
    w = codec.from_signed(np.array([1, -2, 3], np.int64))
    st = server_step(None, w, None)
    assert st.words.tolist() == w.tolist() and st.state == b"" and st.state_hash == ""
    assert st.hash == codec.sha256_hex(codec.pack(w))


def run(kind: str, deltas, **coeffs):
    o = optimizer_from_dict({"kind": kind, **coeffs})
    state, steps = None, []
    for d in deltas:
        st = server_step(o, codec.from_signed(q(d)), state)
        state = st.state
        steps.append(codec.to_signed(st.words) / ONE)
    return np.array(steps), unpack_state(state, o.state_names, len(deltas[0]))


def test_avgm_without_momentum_at_rate_one_is_plain_fedavg():
    deltas = [np.array([0.25, -1.5, 3.0]), np.array([0.125, 0.5, -2.0])]
    steps, _ = run("avgm", deltas, lr="1", momentum="0")
    assert np.array_equal(steps, np.array(deltas))


def test_avgm_accumulates_momentum_like_the_float_formula():
    deltas = [np.array([1.0, -0.5]), np.array([1.0, -0.5]), np.array([0.0, 0.0])]
    steps, state = run("avgm", deltas, lr="0.5", momentum="0.9")
    m = np.zeros(2)
    ref = []
    for d in deltas:
        m = 0.9 * m + d
        ref.append(0.5 * m)
    assert np.allclose(steps, ref, atol=4 / ONE)
    assert np.allclose(state["m"] / ONE, m, atol=4 / ONE)


@pytest.mark.parametrize("kind", ["adam", "yogi", "adagrad"])
def test_adaptive_optimizers_follow_their_float_reference(kind):
    rng = np.random.default_rng(1)
    deltas = [rng.normal(0, 0.05, 64) for _ in range(6)]
    lr, b1, b2, tau = 0.01, 0.9, 0.99, 0.001
    steps, _ = run(kind, deltas, lr=str(lr), beta1=str(b1) if kind != "adagrad" else "0", beta2=str(b2),
                   tau=str(tau))
    m, v, ref = np.zeros(64), np.zeros(64), []
    for d in deltas:
        m = (b1 * m + (1 - b1) * d) if kind != "adagrad" else d
        if kind == "adam":
            v = b2 * v + (1 - b2) * d * d
        elif kind == "yogi":
            v = v - (1 - b2) * d * d * np.sign(v - d * d)
        else:
            v = v + d * d
        ref.append(lr * m / (np.sqrt(v) + tau))
    err = np.abs(steps - np.array(ref)).max()
    assert err < 0.02 * np.abs(ref).max(), err   # Q16 rounding of tiny moments, far below the step size
    assert np.sign(steps[0]).tolist() == np.sign(deltas[0]).tolist()


@pytest.mark.parametrize("kind", ["avgm", "adam", "yogi", "adagrad"])
def test_extreme_aggregates_saturate_instead_of_overflowing(kind):
    big = codec.from_signed(np.array([codec.INT32_MAX, -codec.INT32_MAX, 0, 1], np.int64))
    o = optimizer_from_dict({"kind": kind, "lr": "10"})
    state = None
    for _ in range(50):
        st = server_step(o, big, state)
        state = st.state
        s = codec.to_signed(st.words)
        assert s[0] > 0 and s[1] < 0 and s[2] >= 0       # no wrap-around: signs follow the aggregate
        assert int(np.abs(s).max()) <= fx.WORD_MAX
    moments = unpack_state(state, o.state_names, 4)
    assert int(moments["m"].max()) <= fx.M_MAX and int(moments.get("v", np.zeros(1)).max()) <= fx.V_MAX


@pytest.mark.parametrize("kind", ["avgm", "adam", "yogi", "adagrad"])
def test_the_step_is_a_pure_function_of_aggregate_and_state(kind):
    rng = np.random.default_rng(3)
    o = optimizer_from_dict({"kind": kind})
    w = codec.from_signed(rng.integers(-5000, 5000, 1000))
    a, b = server_step(o, w, None), server_step(o, w.copy(), None)
    assert (a.hash, a.state_hash) == (b.hash, b.state_hash)
    c = server_step(o, w, a.state)
    assert c.state_hash != a.state_hash
