"""Job participants: a subset of the consortium runs the job; only they register, lead, vote, get slashed."""
import numpy as np

from fedfabric_cc import rounds as rmod

from . import identities as ids
from .harness import ORGS, T0, Ledger, h, init, job_spec
from .rounds_helper import open_and_register, secure_payloads, submit, vote_all

A, T = ids.admin, ids.trainer
PAIR = ["Org1MSP", "Org3MSP"]
SAMPLES = {m: 100 for m in ORGS}


def _led(**over) -> Ledger:
    led = Ledger()
    init(led, stakes=(100, 100, 100))
    led.call(A(ORGS[0]), "create_job", job_spec(participants=["Org3MSP", "Org1MSP"], **over))
    return led


def test_participants_are_stored_sorted_and_announced():
    led = _led()
    assert led.call(T(ORGS[1]), "get_job", "job1")["spec"]["participants"] == PAIR
    assert led.last_event.json()["participants"] == PAIR


def test_round_electorate_leader_and_registration_follow_the_participants():
    led = _led()
    rec = led.call(T(ORGS[1]), "open_round", "job1")   # any member may drive the job
    assert rec["eligible"] == PAIR and rec["stakes"] == {m: 100 for m in PAIR}
    assert rec["leader"] == rmod.draw_leader({m: 100 for m in PAIR}, h("v0"), "job1", 1)["leader"]
    led.call(T(ORGS[0]), "start_registration", "job1", 1)
    led.reject(T(ORGS[1]), "register", "job1", 1, "22" * 32, match="Org2MSP is not a participant of job job1",
               status=403)
    led.call(T(ORGS[0]), "register", "job1", 1, "11" * 32)
    led.reject(T(ORGS[0]), "close_registration", "job1", 1, match="(1 of 2 registered)")
    led.call(T(ORGS[2]), "register", "job1", 1, "33" * 32)
    rec = led.call(T(ORGS[0]), "close_registration", "job1", 1)   # every participant registered: early close
    assert rec["state"] == "collecting" and rec["participants"] == PAIR


def test_a_participants_only_round_finalizes_on_their_votes():
    led = _led()
    r, keys = open_and_register(led, "job1", who=PAIR)
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {m: np.full(8, 0.01) for m in PAIR}, SAMPLES, "job1", r, PAIR),
           SAMPLES)
    led.call(T(led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]), "aggregate", "job1", r)
    led.reject(T(ORGS[1]), "vote", "job1", r, {"approve": True, "model_hash": h("v1")},
               match="Org2MSP had no stake as a participant when round 1 opened", status=403)
    vote_all(led, "job1", r, h("v1"), approve=PAIR)
    v = led.call(T(ORGS[0]), "finalize_round", "job1", r)
    assert v["tally"]["total_stake"] == 200 and [c["msp_id"] for c in v["contributors"]] == PAIR
    assert set(v["rewards"]) == set(PAIR) and v["slashed"] == {}


def test_absence_slashing_touches_only_registered_participants():
    led = _led()
    r, keys = open_and_register(led, "job1", who=PAIR)
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {"Org1MSP": np.zeros(8)}, SAMPLES, "job1", r, PAIR), SAMPLES)
    out = led.call(T(ORGS[1]), "aggregate", "job1", r, at=T0 + 301)
    assert out["state"] == "failed" and out["settlement"]["slashed"] == {"Org3MSP": 10}
    stakes = {o["msp_id"]: o["stake"] for o in led.call(ids.auditor(ORGS[0]), "list_orgs")}
    assert stakes == {"Org1MSP": 100, "Org2MSP": 100, "Org3MSP": 90}


def test_open_round_refused_while_too_few_participants_can_take_part():
    led = _led()
    p = led.call(A(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "suspended", "x")
    led.call(A(ORGS[1]), "approve_status_change", p["proposal_id"])
    led.reject(T(ORGS[0]), "open_round", "job1",
               match="only 1 of job job1's participants are active with stake (Org1MSP); 2 required to open a round",
               status=409)
