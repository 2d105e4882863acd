"""Every refusal of the round protocol names its reason and leaves the ledger as it was; forged time is
refused by the endorser's clock."""
from __future__ import annotations

import pytest

from . import identities as ids
from .harness import ORGS, T0, Ledger, init, job_spec, meta_for, words
from .rounds_helper import Consortium, deltas_for

T = ids.trainer
JOB = "job1"


@pytest.fixture
def started():
    led = Ledger()
    init(led, orgs=ORGS + ["Org4MSP"], stakes=(100, 100, 100, 100), balances=(0, 0, 0, 0))
    led.call(ids.admin(ORGS[0]), "create_job", job_spec())   # Org4 is a member, not a participant
    c = Consortium(led)
    c.register(1, ORGS)
    c.start(1)
    return led, c


def test_clock_skew_refuses_forged_timestamps_whatever_the_transaction(started):
    led, c = started
    for at in (T0 + 3600, T0 - 60, 0):
        led.reject(T(ORGS[0]), "finalize_round", JOB, 1, at=at, match="clock skew", status=400)
        led.reject(T(ORGS[0]), "register", JOB, 2, "ab" * 32, at=at, match="clock skew")
        led.reject(T(ORGS[0]), "submit_update", JOB, 1, {}, at=at, match="clock skew")
    e = led.reject(T(ORGS[0]), "vote", JOB, 1, {}, at=T0 + 31, match="clock skew")
    assert "+31 s from this endorser's clock (at most ±30 s allowed)" in e.message
    # within the skew the transaction runs (and is refused for its own reasons)
    led.reject(T(ORGS[0]), "finalize_round", JOB, 1, at=T0 + 29, match="collecting until", status=409)
    # reads are not gated (nothing is written)
    assert c.call(ORGS[0], "get_round", JOB, 1, at=0)["round"] == 1


def test_forged_time_cannot_expire_a_live_round_or_register_late():
    """The attacks of the issue: a round closed early by a clock set ahead, a late registration backdated."""
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec())
    c = Consortium(led)
    c.register(1, ORGS[:2])
    led.reject(T(ORGS[0]), "start_round", JOB, 1, at=T0 + 3600, match="clock skew")
    led.t = T0 + 120                                     # the window closed at T0 + 60
    for at in (T0 + 50, T0 - 60, 0):
        led.reject(T(ORGS[2]), "register", JOB, 1, "cd" * 32, at=at, match="clock skew")
    led.reject(T(ORGS[2]), "register", JOB, 1, "cd" * 32, match="too late", status=409)


def test_only_participants_drive_a_jobs_rounds(started):
    led, c = started
    for fn, args in (("start_round", (JOB, 1)), ("finalize_round", (JOB, 1)), ("register", (JOB, 2, "ab" * 32)),
                     ("submit_update", (JOB, 1, {})), ("reveal_seeds", (JOB, 1, [])), ("vote", (JOB, 1, {})),
                     ("get_update", (JOB, 1, "Org1MSP")), ("get_revealed_seeds", (JOB, 1, "Org1MSP"))):
        led.reject(T("Org4MSP"), fn, *args, match="Org4MSP is not a participant of job job1", status=403)
        led.reject(ids.auditor(ORGS[0]), fn, *args, match="auditors are read-only", status=403)


def test_submission_refusals(started):
    led, c = started
    p = c.payload(1, ORGS[0], deltas_for(ORGS)[ORGS[0]])
    tr = {"update": p}
    led.reject(T(ORGS[0]), "submit_update", JOB, 2, meta_for(p), transient=tr, match="wrong round", status=409)
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p), match="transient map under 'update'")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p, sha256="0" * 64), transient=tr, match="hash mismatch")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p, size=4), transient=tr, match="wrong length")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p, shape_digest="1" * 64), transient=tr,
               match="wrong shape")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p, dtype="float32"), transient=tr, match="wrong dtype")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p, sample_count=0), transient=tr,
               match="meta.sample_count=0 out of range")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p, colour=1), transient=tr,
               match="meta: unknown field(s) 'colour'")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p, metrics={"acc": 0.5}), transient=tr,
               match="floats are not allowed")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p[:-4] + b"\0\0\0"), transient={"update": p[:-1]},
               match="wrong length")
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p, training={"start": 1}), transient=tr,
               match="meta.training.epochs is required")
    c.submit_payloads(1, {ORGS[0]: p})
    led.reject(T(ORGS[0]), "submit_update", JOB, 1, meta_for(p), transient=tr, match="duplicate", status=409)
    led.t = T0 + 301
    led.reject(T(ORGS[1]), "submit_update", JOB, 1, meta_for(p), transient=tr, match="too late", status=409)


def test_ballot_refusals(started):
    led, c = started
    c.submit(1, deltas_for(ORGS[:2]))
    res = c.result(1)
    good = c.ballot(1, ORGS[0], res)
    led.reject(T(ORGS[0]), "vote", JOB, 1, good, match="collecting until", status=409)
    c.submit(1, {ORGS[2]: deltas_for(ORGS)[ORGS[2]]})
    res = c.result(1)
    good = c.ballot(1, ORGS[0], res)
    for change, match in (({"approve": "yes"}, "ballot.approve must be true or false"),
                          ({"aggregate_hash": "XY"}, "ballot.aggregate_hash must be a lowercase hex"),
                          ({"contributors": ["Org1MSP", "Org1MSP"]}, "lists an org twice"),
                          ({"contributors": []}, "must name the updates"),
                          ({"contributors": ["Org1MSP", "Org9MSP"]}, "without an update in round 1: Org9MSP"),
                          ({"contributors": ["Org1MSP", "Org2MSP"]}, "every submitted update counts"),
                          ({"flagged": ["Org9MSP"]}, "subset of ballot.contributors"),
                          ({"next_public_key": "zz"}, "ballot.next_public_key must be a lowercase hex"),
                          ({"next_public_key": c.round(1)["public_keys"][ORGS[0]]}, "public key reused"),
                          ({"metrics": {"x" * 65: 1}}, "at most 64 characters"),
                          ({"metrics": {"acc": 10**16}}, "|x| <= 10^15"),
                          ({"weight": 5}, "ballot: unknown field(s) 'weight'")):
        led.reject(T(ORGS[0]), "vote", JOB, 1, {**good, **change}, match=match)
    c.vote(1, [ORGS[0]], res)
    led.reject(T(ORGS[0]), "vote", JOB, 1, c.ballot(1, ORGS[0], res), match="duplicate", status=409)
    led.t = T0 + 300 + 300 + 120 + 1
    led.reject(T(ORGS[1]), "vote", JOB, 1, c.ballot(1, ORGS[1], res), match="vote window of round 1 closed")


def test_reveal_refusals(started):
    led, c = started
    c.submit(1, deltas_for(ORGS[:2]))
    seeds = {"transient": {"seeds": b'{"Org3MSP": "' + b"ab" * 32 + b'"}'}}
    led.reject(T(ORGS[0]), "reveal_seeds", JOB, 1, ["Org3MSP"], match="after it closes", status=409, **seeds)
    led.t = T0 + 301
    led.reject(T(ORGS[0]), "reveal_seeds", JOB, 1, ["Org2MSP"], match="only orgs that did not submit", **seeds)
    led.reject(T(ORGS[0]), "reveal_seeds", JOB, 1, ["Org1MSP"], match="for other participants", **seeds)
    led.reject(T(ORGS[0]), "reveal_seeds", JOB, 1, ["Org3MSP"], match="transient map under 'seeds'")
    led.reject(T(ORGS[0]), "reveal_seeds", JOB, 1, ["Org3MSP"], transient={"seeds": b"{"}, match="not valid JSON")
    led.reject(T(ORGS[0]), "reveal_seeds", JOB, 1, ["Org3MSP"], transient={"seeds": b'{"Org3MSP": "x"}'},
               match="64 lowercase hex")
    led.reject(T(ORGS[0]), "reveal_seeds", JOB, 1, "Org3MSP", match="cannot parse argument 'left_out'")
    c.reveal(1, [ORGS[0]], ["Org3MSP"])
    led.reject(T(ORGS[0]), "reveal_seeds", JOB, 1, ["Org3MSP"], match="duplicate", status=409, **seeds)
    led.t = T0 + 601 + 1
    led.reject(T(ORGS[1]), "reveal_seeds", JOB, 1, ["Org3MSP"], match="seed-reveal window", status=409, **seeds)


def test_registration_refusals():
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(rounds=2))
    c = Consortium(led)
    key = c.fresh_key(ORGS[0], 1)
    led.reject(T(ORGS[0]), "register", JOB, 1, "AB" * 32, match="64 lowercase hex")
    led.reject(T(ORGS[0]), "register", JOB, 2, key, match="takes no registrations now", status=409)
    led.reject(T(ORGS[0]), "register", JOB, 0, key, match="takes no registrations now")
    c.call(ORGS[0], "register", JOB, 1, key)
    led.reject(T(ORGS[0]), "register", JOB, 1, c.fresh_key(ORGS[0], 1), match="already registered", status=409)
    c.register(1, ORGS[1:])
    c.start(1)
    led.reject(T(ORGS[0]), "start_round", JOB, 1, match="is collecting, not registration", status=409)
    led.reject(T(ORGS[0]), "register", JOB, 3, key, match="round 3 of job job1 takes no registrations now")
    led.reject(T(ORGS[0]), "register", JOB, 2, c.round(1)["public_keys"][ORGS[0]], match="public key reused")


def test_too_few_registrations_fail_the_round_and_open_the_next():
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec())
    c = Consortium(led)
    c.register(1, [ORGS[0]])
    led.t = T0 + 61
    out = c.start(1)
    assert out["state"] == "failed" and out["outcome"]["reason"] == "only 1 registered by 1800000060, 2 required"
    assert out["outcome"]["settlement"] == {"rewards": {}, "slashed": {}, "owed": {}, "slash_deferred": None}
    nxt = c.round(2)
    assert nxt["state"] == "registration" and nxt["deadlines"]["register_by"] == T0 + 121
    assert led.last_event.name == "RoundFailed" and led.last_event.json()["next"]["round"] == 2


def test_nobody_submits_the_round_fails_at_the_deadline_and_registered_orgs_are_slashed(started):
    led, c = started
    led.reject(T(ORGS[0]), "finalize_round", JOB, 1, match="collecting until")
    led.t = T0 + 301
    out = c.finalize(1)
    assert out["state"] == "failed" and out["outcome"]["reason"] == "only 0 updates submitted, 2 required"
    assert out["outcome"]["settlement"]["slashed"] == {m: 10 for m in ORGS}
    assert c.round(2)["state"] == "registration"


def test_survivors_that_never_reveal_are_slashed_when_the_reveal_window_ends(started):
    led, c = started
    c.submit(1, deltas_for(ORGS[:2]))
    led.t = T0 + 301
    c.reveal(1, [ORGS[0]], ["Org3MSP"])
    led.reject(T(ORGS[0]), "finalize_round", JOB, 1, match="voting until", status=409)
    led.t = T0 + 602
    out = c.finalize(1)
    assert out["state"] == "failed" and "Org2MSP did not reveal their seeds for Org3MSP" in out["outcome"]["reason"]
    assert out["outcome"]["settlement"]["slashed"] == {"Org2MSP": 10, "Org3MSP": 10}
    assert out["outcome"]["no_reveal"] == ["Org2MSP"]


def test_payload_reads_are_for_participants_and_hash_checked(started):
    led, c = started
    p = c.submit(1, deltas_for(ORGS))
    assert c.call(ORGS[1], "get_update", JOB, 1, ORGS[0]) == p[ORGS[0]]
    led.reject(T(ORGS[1]), "get_update", JOB, 1, "Org9MSP", match="update of Org9MSP in round 1 not found")
    key = next(k for k in led.stub.private["fedfabricUpdates"] if "Org1MSP" in k)
    led.stub.private["fedfabricUpdates"][key] = b"\0" * len(p[ORGS[0]])
    led.reject(T(ORGS[1]), "get_update", JOB, 1, ORGS[0], match="hash mismatch", status=500)
    del led.stub.private["fedfabricUpdates"][key]
    led.reject(T(ORGS[1]), "get_update", JOB, 1, ORGS[0], match="not available on this peer", status=503)
