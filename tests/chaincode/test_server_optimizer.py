"""The server-optimizer stage on the memory stub: its state hash on every version, the step recomputed
under endorsement from the base state the finalizer passes (checked by hash), and ballots that must
carry the step exactly when the job has an optimizer."""
from __future__ import annotations

import numpy as np
import pytest

from fedfabric_protocol import codec
from fedfabric_protocol.optimizers import optimizer_from_dict, pack_state, server_step, state_hash
from fedfabric_protocol.states import Transient

from . import identities as ids
from .harness import ORGS, NUM_PARAMS, Ledger, init, job_spec
from .rounds_helper import Consortium, deltas_for

T = ids.trainer
ADAM = {"kind": "adam", "lr": "0.01", "beta1": "0.9", "beta2": "0.99", "tau": "0.001"}
STATE = Transient.OPTIMIZER_STATE.value


def _job(privacy: str = "secure", opt=ADAM, **over) -> tuple[Ledger, Consortium]:
    led = Ledger()
    init(led)
    extra = {"server_optimizer": opt} if opt else {}
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(privacy=privacy, **extra, **over))
    c = Consortium(led)
    c.register(1, ORGS)
    c.start(1)
    return led, c


def _submitted_and_voted(c: Consortium, r: int, seed: int = 0) -> dict:
    c.submit(r, deltas_for(ORGS, seed))
    res = c.result(r)
    c.vote(r, ORGS, res)
    return res


@pytest.mark.parametrize("privacy", ["secure", "clear"])
def test_versions_chain_the_optimizer_state_and_rounds_open_on_it(privacy):
    led, c = _job(privacy)
    opt = optimizer_from_dict(ADAM)
    v0 = led.call(T(ORGS[0]), "get_version", "job1", "0")
    assert v0["optimizer"]["state_hash"] == state_hash(pack_state(opt.initial_state(NUM_PARAMS)))
    assert v0["optimizer"]["kind"] == "adam" and c.round(1)["base_state_hash"] == v0["optimizer"]["state_hash"]
    state = None
    for r in (1, 2, 3):
        res = _submitted_and_voted(c, r, seed=r)
        agg_words = res["words"]
        expect = server_step(opt, agg_words, state)
        assert (res["step_hash"], res["state_hash"]) == (expect.hash, expect.state_hash)
        out = c.finalize(r)
        assert out["state"] == "finalized", out["outcome"]["reason"]
        ver = led.call(T(ORGS[0]), "get_version", "job1", str(r))
        assert ver["optimizer"] == {**opt.to_dict(), "step_hash": expect.hash, "state_hash": expect.state_hash,
                                    "parent_state_hash": c.round(r)["base_state_hash"]}
        if r < 3:
            assert c.round(r + 1)["base_state_hash"] == expect.state_hash
        state = expect.state
    assert led.call(T(ORGS[0]), "get_job", "job1")["spec"]["server_optimizer"] == opt.to_dict()


def test_finalize_needs_the_base_state_and_refuses_another_one():
    led, c = _job()
    _submitted_and_voted(c, 1)
    assert c.finalize(1)["state"] == "finalized"
    _submitted_and_voted(c, 2, seed=2)
    led.reject(T(ORGS[0]), "finalize_round", "job1", 2, transient={}, match=f"in the transient map under '{STATE}'",
               status=409)
    wrong = bytearray(c.opt_state)
    wrong[0] ^= 1
    led.reject(T(ORGS[0]), "finalize_round", "job1", 2, transient={STATE: bytes(wrong)},
               match="is not the optimizer state of version 1")
    led.reject(T(ORGS[0]), "finalize_round", "job1", 2, transient={STATE: c.opt_state[:-8]},
               match="is not the optimizer state of version 1")
    assert c.finalize(2)["state"] == "finalized"


def test_a_quorum_on_a_wrong_step_fails_the_round_and_keeps_the_state():
    led, c = _job()
    c.submit(1, deltas_for(ORGS, 0))
    res = c.result(1)
    res["step_hash"] = codec.sha256_hex(b"another step")
    c.vote(1, ORGS, res)
    out = c.finalize(1)
    assert out["state"] == "failed" and "adam step" in out["outcome"]["reason"]
    assert "differs from the endorsed recomputation" in out["outcome"]["reason"]
    v0 = led.call(T(ORGS[0]), "get_version", "job1", "0")
    assert c.round(2)["base_state_hash"] == v0["optimizer"]["state_hash"]


def test_ballots_carry_the_step_exactly_when_the_job_has_an_optimizer():
    led, c = _job()
    c.submit(1, deltas_for(ORGS, 0))
    res = c.result(1)
    plain = {k: v for k, v in res.items() if k not in ("step_hash", "state_hash")}
    led.reject(T(ORGS[0]), "vote", "job1", 1, c.ballot(1, ORGS[0], plain), match="required exactly when the job has")
    half = {**res}
    del half["state_hash"]
    led.reject(T(ORGS[0]), "vote", "job1", 1, c.ballot(1, ORGS[0], half), match="state_hash")
    led2, c2 = _job(opt=None)
    c2.submit(1, deltas_for(ORGS, 0))
    res2 = c2.result(1)
    led2.reject(T(ORGS[0]), "vote", "job1", 1, c2.ballot(1, ORGS[0], {**res2, "step_hash": "ab" * 32,
                                                                          "state_hash": "cd" * 32}),
                match="(job job1: none)")


@pytest.mark.parametrize("opt, match", [({"kind": "sgdm"}, "unknown server optimizer 'sgdm'"),
                                        ({"kind": "adam", "beta1": "1.5"}, "spec.server_optimizer.beta1"),
                                        ("adam", "must be a JSON object")])
def test_create_job_refuses_a_bad_optimizer_by_name(opt, match):
    led = Ledger()
    init(led)
    led.reject(ids.admin(ORGS[0]), "create_job", job_spec(server_optimizer=opt), match=match, status=400)


def test_a_failed_round_leaves_the_next_on_the_same_base_state():
    led, c = _job()
    c.submit(1, deltas_for(ORGS, 0))
    c.vote(1, ORGS, c.result(1), approve=False)
    assert c.finalize(1)["state"] == "failed"
    res = _submitted_and_voted(c, 2, seed=5)
    assert c.round(2)["base_version"] == 0 and c.opt_state is None
    out = c.finalize(2)
    assert out["state"] == "finalized"
    assert led.call(T(ORGS[0]), "get_version", "job1", "1")["optimizer"]["state_hash"] == res["state_hash"]
