"""Rejections not covered elsewhere: each with its specific error, each changing nothing."""
import json

import numpy as np
import pytest

from . import identities as ids
from .harness import ORGS, T0, Ledger, h, init, job_spec, meta_for, words
from .rounds_helper import open_and_register, reveal, secure_payloads, submit

A, T = ids.admin, ids.trainer
SAMPLES = {m: 100 for m in ORGS}
UPDATES, AGGREGATES = "fedfabricUpdates", "fedfabricAggregates"


def _led(**over) -> Ledger:
    led = Ledger()
    init(led)
    led.call(A(ORGS[0]), "create_job", job_spec(**over))
    return led


def _submitted(led: Ledger, who=ORGS) -> tuple[int, dict]:
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {m: np.full(8, 0.01) for m in who}, SAMPLES, "job1", r, ORGS),
           SAMPLES)
    return r, keys


def _pkey(led: Ledger, *attrs: str, kind: str = "upd") -> str:
    return led.stub.create_composite_key(kind, ["job1", "000001", *attrs])


def test_aggregate_refuses_a_private_payload_that_does_not_match_its_hash():
    led = _led()
    r, _ = _submitted(led)
    led.stub.private[UPDATES][_pkey(led, "Org2MSP")] = words([9] * 8)
    leader = led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]
    led.reject(T(leader), "aggregate", "job1", r, status=500,
               match="hash mismatch: the private payload of Org2MSP does not match its recorded SHA-256")


def test_aggregate_refuses_when_a_private_payload_is_missing_on_this_peer():
    led = _led()
    r, _ = _submitted(led)
    del led.stub.private[UPDATES][_pkey(led, "Org1MSP")]
    led.reject(T(ORGS[0]), "aggregate", "job1", r, status=503, at=T0 + 301,
               match="the private payload of Org1MSP is not available on this peer")


@pytest.mark.parametrize("tamper,status,match", [
    ("delete", 503, "the revealed seed of Org2MSP for Org3MSP is not available on this peer"),
    ("replace", 500, "hash mismatch: the revealed seed of Org2MSP for Org3MSP does not match its record"),
])
def test_aggregate_checks_every_revealed_seed(tamper, status, match):
    led = _led()
    r, keys = _submitted(led, who=ORGS[:2])
    reveal(led, "job1", r, keys, ORGS[:2], ["Org3MSP"], at=T0 + 301)
    k = _pkey(led, "Org2MSP", "Org3MSP", kind="seed")
    assert k in led.stub.private[UPDATES]
    if tamper == "delete":
        del led.stub.private[UPDATES][k]
    else:
        led.stub.private[UPDATES][k] = b"\x01" * 32
    led.reject(T(ORGS[0]), "aggregate", "job1", r, status=status, match=match, at=T0 + 302)


def test_round_without_an_aggregate_and_aggregate_missing_on_this_peer():
    led = _led()
    r, _ = _submitted(led)
    led.reject(T(ORGS[0]), "get_aggregate", "job1", r, status=409,
               match="round 1 of job job1 has no aggregate (state collecting)")
    led.call(T(led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]), "aggregate", "job1", r)
    led.stub.private[AGGREGATES].clear()
    led.reject(T(ORGS[0]), "get_aggregate", "job1", r, status=503,
               match="the aggregate of round 1 is not available on this peer")


def test_vote_by_an_org_without_stake():
    led = Ledger()
    init(led, stakes=(100, 100, 0))
    led.call(A(ORGS[0]), "create_job", job_spec())
    r, keys = open_and_register(led, "job1", who=ORGS[:2])
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {m: np.zeros(8) for m in ORGS[:2]}, SAMPLES, "job1", r, ORGS[:2]),
           SAMPLES)
    led.call(T(led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]), "aggregate", "job1", r)
    led.reject(T(ORGS[2]), "vote", "job1", r, {"approve": True, "model_hash": h("v1")}, status=403,
               match="Org3MSP had no stake as a participant when round 1 opened and cannot vote")


@pytest.mark.parametrize("ballot", [[True], 7, "\"yes\"", {"approve": True, "model_hash": h("v1"), "weight": 5}])
def test_vote_with_a_bad_ballot_shape(ballot):
    led = _led()
    r, _ = _submitted(led)
    led.call(T(led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]), "aggregate", "job1", r)
    led.reject(T(ORGS[0]), "vote", "job1", r, ballot, match="ballot must be an object with approve, model_hash and metrics")
    led.reject(T(ORGS[0]), "vote", "job1", r, {"approve": True, "model_hash": "ABC"},
               match="ballot.model_hash must be a lowercase hex SHA-256")


GOOD = words([1, 2, 3, 4, 5, 6, 7, 8])


@pytest.mark.parametrize("meta,match", [
    ([1, 2], "meta must be a JSON object"),
    (42, "meta must be a JSON object"),
    ("\"meta\"", "meta must be a JSON object"),
    (meta_for(GOOD, training="fast"), "meta.training must be an object"),
    (meta_for(GOOD, training=None), "meta.training must be an object"),
    (meta_for(GOOD, training=dict(meta_for(GOOD)["training"], gpu="a100")), "meta.training: unknown field(s) gpu"),
    (meta_for(GOOD, metrics=[1]), "meta.metrics must be an object of at most 64 entries"),
])
def test_submission_meta_must_be_an_object(meta, match):
    led = _led()
    r, _ = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    led.reject(T(ORGS[0]), "submit_update", "job1", r, meta, transient={"update": GOOD}, match=match)


def test_consortium_not_initialized():
    led = Ledger()
    init(led)
    del led.stub.state[led.stub.create_composite_key("consortium", [])]
    led.reject(A(ORGS[0]), "propose_stake_adjustment", "p1", "Org2MSP", 5, "x", status=409,
               match="consortium not initialized: run init_consortium first")
    led.reject(A(ORGS[0]), "propose_status_change", "s1", "Org2MSP", "suspended", "x", status=409,
               match="consortium not initialized: run init_consortium first")


def test_new_transactions_parse_their_arguments():
    led = _led()
    led.reject(T(ORGS[0]), "expire_round", "job1", "one", match="cannot parse argument 'round'")
    led.reject(A(ORGS[0]), "propose_status_change", "s1", "Org2MSP", match="expected 4 arguments, got 2")
    assert json.loads(led.stub.state[led.stub.create_composite_key("job", ["job1"])])["current_round"] == 0
