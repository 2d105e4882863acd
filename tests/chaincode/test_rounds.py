import collections

import pytest

from fedfabric_cc import rounds as rmod

from . import identities as ids
from .harness import ORGS, T0, Ledger, h, init, job_spec

T = ids.trainer


@pytest.fixture
def led():
    led = Ledger()
    init(led, stakes=(100, 100, 100))
    led.call(ids.admin(ORGS[0]), "create_job", job_spec())
    return led


KEY = "11" * 32


def test_open_round_draws_leader_from_stake_seeded_by_model_hash(led):
    rec = led.call(T(ORGS[1]), "open_round", "job1")
    draw = rmod.draw_leader({m: 100 for m in ORGS}, h("v0"), "job1", 1)
    assert rec["state"] == "open" and rec["round"] == 1 and rec["leader"] == draw["leader"]
    assert rec["base_version"] == 0 and rec["base_hash"] == h("v0") and rec["stakes"] == {m: 100 for m in ORGS}
    assert led.call(T(ORGS[0]), "get_job", "job1")["current_round"] == 1
    ev = led.last_event
    assert ev.name == "RoundOpened" and ev.json()["leader"] == draw["leader"]


def test_leader_draw_is_deterministic_and_stake_weighted():
    stakes = {"A": 1, "B": 3, "C": 0, "D": 6}
    d1 = rmod.draw_leader(stakes, "ab" * 32, "j", 1)
    assert d1 == rmod.draw_leader(dict(reversed(list(stakes.items()))), "ab" * 32, "j", 1)
    counts = collections.Counter(rmod.draw_leader(stakes, h(str(i)), "j", 1)["leader"] for i in range(3000))
    assert "C" not in counts
    assert 0.07 < counts["A"] / 3000 < 0.13 and 0.25 < counts["B"] / 3000 < 0.35 and 0.55 < counts["D"] / 3000 < 0.65


def test_state_machine_happy_path_and_illegal_transitions(led):
    led.call(T(ORGS[0]), "open_round", "job1")
    led.reject(T(ORGS[0]), "open_round", "job1", match="round 1 of job job1 is still open")
    led.reject(T(ORGS[0]), "close_registration", "job1", 1, match="is open, expected registration", status=409)
    led.reject(T(ORGS[0]), "register", "job1", 1, KEY, match="is open, expected registration")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, {}, match="wrong state: round 1 of job job1 is open")
    led.reject(T(ORGS[0]), "aggregate", "job1", 1, match="is open, expected collecting")
    led.reject(T(ORGS[0]), "vote", "job1", 1, {"approve": True}, match="is open, expected aggregated")
    led.reject(T(ORGS[0]), "finalize_round", "job1", 1, match="is open, expected aggregated")
    rec = led.call(T(ORGS[0]), "start_registration", "job1", 1)
    assert rec["state"] == "registration" and rec["deadlines"]["registration"] == T0 + 60
    led.reject(T(ORGS[0]), "start_registration", "job1", 1, match="is registration, expected open")
    led.reject(T(ORGS[0]), "start_registration", "job1", 2, match="round 2 of job job1 not found")
    led.reject(T(ORGS[0]), "start_registration", "job1", 0, match="positive integer")
    with pytest.raises(Exception, match="illegal transition finalized -> open"):
        rmod.advance(None, {"state": "finalized", "round": 1, "job_id": "j"}, "open")


def test_registration(led):
    led.call(T(ORGS[0]), "open_round", "job1")
    led.call(T(ORGS[0]), "start_registration", "job1", 1)
    reg = led.call(T(ORGS[0]), "register", "job1", 1, KEY)
    assert reg["public_key"] == KEY and led.last_event.name == "Registered"
    led.reject(T(ORGS[0]), "register", "job1", 1, "22" * 32, match="already registered", status=409)
    led.reject(T(ORGS[1]), "register", "job1", 1, KEY, match="generate a fresh key")
    led.reject(T(ORGS[1]), "register", "job1", 1, "zz", match="raw X25519 public key")
    led.reject(ids.auditor(ORGS[1]), "register", "job1", 1, "22" * 32, match="auditors are read-only")
    led.reject(ids.trainer("Org9MSP"), "register", "job1", 1, "22" * 32, match="Org9MSP is not a member")
    led.reject(T(ORGS[1]), "register", "job1", 1, "22" * 32, match="registration for round 1 of job job1 closed",
               at=T0 + 61)
    led.reject(T(ORGS[1]), "close_registration", "job1", 1, match="open until")
    led.call(T(ORGS[1]), "register", "job1", 1, "22" * 32)
    rec = led.call(T(ORGS[1]), "close_registration", "job1", 1, at=T0 + 61)
    assert rec["state"] == "collecting" and rec["participants"] == ["Org1MSP", "Org2MSP"]
    assert rec["deadlines"]["submission"] == T0 + 61 + 300
    assert led.last_event.json()["public_keys"] == {"Org1MSP": KEY, "Org2MSP": "22" * 32}


def test_close_registration_early_when_everyone_registered(led):
    led.call(T(ORGS[0]), "open_round", "job1")
    led.call(T(ORGS[0]), "start_registration", "job1", 1)
    for i, m in enumerate(ORGS):
        led.call(T(m), "register", "job1", 1, f"{i + 1}{i + 1}" * 32)
    assert led.call(T(ORGS[2]), "close_registration", "job1", 1)["state"] == "collecting"


def test_too_few_registrations_fail_the_round_and_slash_nobody(led):
    led.call(T(ORGS[0]), "open_round", "job1")
    led.call(T(ORGS[0]), "start_registration", "job1", 1)
    led.call(T(ORGS[0]), "register", "job1", 1, KEY)
    rec = led.call(T(ORGS[0]), "close_registration", "job1", 1, at=T0 + 100)
    assert rec["state"] == "failed" and "only 1 registered" in rec["reason"]
    assert led.last_event.name == "RoundFailed"
    job = led.call(T(ORGS[0]), "get_job", "job1")
    assert job["rounds_failed"] == 1 and job["latest_version"] == 0
    assert led.call(T(ORGS[0]), "open_round", "job1")["round"] == 2
    led.call(T(ORGS[0]), "start_registration", "job1", 2)
    led.reject(T(ORGS[0]), "register", "job1", 2, KEY, match="reused from round 1")


def test_job_runs_out_of_rounds():
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(rounds=1))
    led.call(T(ORGS[0]), "open_round", "job1")
    led.call(T(ORGS[0]), "start_registration", "job1", 1)
    led.call(T(ORGS[0]), "close_registration", "job1", 1, at=T0 + 100)
    led.reject(T(ORGS[0]), "open_round", "job1", match="job job1 is completed")


def test_zero_stake_org_cannot_register():
    led = Ledger()
    init(led, stakes=(100, 100, 0))
    job = led.call(ids.admin(ORGS[0]), "create_job", job_spec())
    assert job["spec"]["participants"] == ORGS[:2]  # default: the active members holding stake
    led.call(ids.admin(ORGS[0]), "create_job", job_spec("job2", participants=ORGS))
    for j in ("job1", "job2"):
        rec = led.call(T(ORGS[0]), "open_round", j)
        assert rec["stakes"] == {"Org1MSP": 100, "Org2MSP": 100} and rec["eligible"] == ORGS[:2]
        led.call(T(ORGS[0]), "start_registration", j, 1)
    led.reject(T(ORGS[2]), "register", "job1", 1, KEY, match="Org3MSP is not a participant of job job1", status=403)
    led.reject(T(ORGS[2]), "register", "job2", 1, KEY, match="Org3MSP had no stake when round 1 opened", status=403)
