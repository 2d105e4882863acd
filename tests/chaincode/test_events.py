"""Audit: every state transition of the contract is announced by the transaction's chaincode event.

A recording ledger compares rounds, jobs, orgs and proposals before and after every successful write
and notes which transition happened under which event. Scenarios drive every round transition in
``rounds.TRANSITIONS`` and every write transaction of the contract; the test fails if a transition or
a write transaction is added without an event (or without being exercised here).
"""
import json
from typing import Any

import numpy as np

from fabshim.contract import Chaincode
from fedfabric_cc import rounds as rmod
from fedfabric_cc.contract import FedFabricContract

from . import identities as ids
from .harness import ORGS, T0, Ledger, h, init, job_spec
from .rounds_helper import open_and_register, reveal, secure_payloads, submit, vote_all

A, T = ids.admin, ids.trainer
SAMPLES = {m: 100 for m in ORGS}

ROUND_EVENTS = {(None, "open"): "RoundOpened", ("open", "registration"): "RegistrationStarted",
                ("open", "failed"): "RoundFailed", ("registration", "collecting"): "CollectingStarted",
                ("registration", "failed"): "RoundFailed", ("collecting", "aggregated"): "RoundAggregated",
                ("collecting", "failed"): "RoundFailed", ("aggregated", "finalized"): "RoundFinalized",
                ("aggregated", "failed"): "RoundFailed"}
OTHER_EVENTS = {("org", None, "active"): "ConsortiumInitialized", ("job", None, "active"): "JobCreated", ("job", "active", "completed"): "JobCompleted",
                ("org", "active", "suspended"): "OrgStatusChanged", ("org", "suspended", "active"): "OrgStatusChanged",
                ("stakeprop", None, "pending"): "StakeAdjustmentProposed",
                ("stakeprop", None, "applied"): "StakeAdjusted", ("stakeprop", "pending", "applied"): "StakeAdjusted",
                ("statusprop", None, "pending"): "StatusChangeProposed",
                ("statusprop", "pending", "applied"): "OrgStatusChanged"}


def _statuses(led: Ledger) -> dict[tuple[str, str], Any]:
    """(object type, key) -> its state field, for every record that has a lifecycle."""
    out = {}
    for k, raw in led.stub.state.items():
        obj_type, attrs = led.stub.split_composite_key(k)
        field = {"round": "state", "job": "status", "org": "status", "stakeprop": "status",
                 "statusprop": "status"}.get(obj_type)
        if field:
            out[(obj_type, "/".join(attrs))] = json.loads(raw)[field]
    return out


class RecordingLedger(Ledger):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, Any, Any, str, str]] = []   # (type, from, to, event, round_event)
        self.writes: dict[str, int] = {}                       # write tx -> successful calls

    def call(self, who: bytes, fn: str, *args: Any, **kw: Any) -> Any:
        before, n = _statuses(self), len(self.stub.events)
        out = super().call(who, fn, *args, **kw)
        if fn in WRITES:
            assert len(self.stub.events) == n + 1, f"{fn} committed without an event"
            self.writes[fn] = self.writes.get(fn, 0) + 1
            ev = self.stub.events[-1]
            round_event = ev.json().get("round_event", ev.name)
            for key, to in _statuses(self).items():
                if before.get(key) != to:
                    self.seen.append((key[0], before.get(key), to, ev.name, round_event))
        else:
            assert len(self.stub.events) == n, f"query {fn} emitted an event"
        return out


WRITES = {t["name"] for t in Chaincode([FedFabricContract()]).metadata()["contracts"]["fedfabric"]["transactions"]
          if not t["evaluate"]}


def _leader(led: Ledger, r: int) -> str:
    return led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]


def _members_scenario(led: RecordingLedger) -> None:
    init(led)
    led.call(A(ORGS[0]), "propose_stake_adjustment", "p1", "Org3MSP", -5, "less data")
    led.call(A(ORGS[1]), "approve_stake_adjustment", "p1")
    led.call(A(ORGS[0]), "propose_status_change", "s1", "Org3MSP", "suspended", "audit")
    led.call(A(ORGS[1]), "approve_status_change", "s1")
    led.call(A(ORGS[0]), "propose_status_change", "s2", "Org3MSP", "active", "audit passed")
    led.call(A(ORGS[1]), "approve_status_change", "s2")
    led.call(A(ORGS[0]), "transfer_stake", "Org3MSP", 5)


def _happy_scenario(led: RecordingLedger) -> None:
    """One secure round with a dropout, finalized: the job's last round, so it completes."""
    led.call(A(ORGS[0]), "create_job", job_spec(rounds=1))
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {m: np.full(8, 0.01) for m in ORGS[:2]}, SAMPLES, "job1", r, ORGS),
           SAMPLES)
    reveal(led, "job1", r, keys, ORGS[:2], ["Org3MSP"], at=T0 + 301)
    led.call(T(ORGS[2]), "aggregate", "job1", r, at=T0 + 301)
    vote_all(led, "job1", r, h("v1"), at=T0 + 302)
    led.call(T(ORGS[0]), "finalize_round", "job1", r, at=T0 + 302)
    led.call(A(ORGS[0]), "set_alias", "job1", "production", 1)
    led.call(A(ORGS[0]), "set_tag", "job1", 1, "stage", "prod")


def _failure_scenario(led: RecordingLedger) -> None:
    """Every way a round fails, one per round of a 4-round job; the last failure completes the job."""
    led.call(A(ORGS[0]), "create_job", job_spec("jobf", rounds=4))
    t = T0 + 10_000
    led.call(T(ORGS[0]), "open_round", "jobf", at=t)                       # open -> failed (expired)
    led.call(T(ORGS[0]), "expire_round", "jobf", 1, at=t + 61)
    led.call(T(ORGS[0]), "open_round", "jobf", at=t + 100)                 # registration -> failed
    led.call(T(ORGS[0]), "start_registration", "jobf", 2, at=t + 100)
    led.call(T(ORGS[0]), "close_registration", "jobf", 2, at=t + 161)
    led.t = t + 200                                                        # collecting -> failed
    r, keys = open_and_register(led, "jobf")
    led.call(T(ORGS[0]), "close_registration", "jobf", r)
    submit(led, "jobf", r, secure_payloads(keys, {"Org1MSP": np.zeros(8)}, SAMPLES, "jobf", r, ORGS), SAMPLES)
    led.call(T(ORGS[0]), "aggregate", "jobf", r, at=t + 501)
    led.t = t + 1000                                                       # aggregated -> failed
    r, keys = open_and_register(led, "jobf")
    led.call(T(ORGS[0]), "close_registration", "jobf", r)
    submit(led, "jobf", r, secure_payloads(keys, {m: np.zeros(8) for m in ORGS}, SAMPLES, "jobf", r, ORGS), SAMPLES)
    leader = led.call(T(ORGS[0]), "get_round", "jobf", r)["leader"]
    led.call(T(leader), "aggregate", "jobf", r)
    for m in ORGS:
        led.call(T(m), "vote", "jobf", r, {"approve": False})
    led.call(T(ORGS[0]), "finalize_round", "jobf", r)


def test_every_transition_and_every_write_transaction_emits_its_event():
    led = RecordingLedger()
    _members_scenario(led)
    _happy_scenario(led)
    _failure_scenario(led)
    assert set(ROUND_EVENTS) == {(None, "open")} | {(s, t) for s, ts in rmod.TRANSITIONS.items() for t in ts}, \
        "a round transition without an expected event"
    assert {(f, t) for kind, f, t, _, _ in led.seen if kind == "round"} == set(ROUND_EVENTS), \
        "a round transition was not exercised"
    for kind, f, t, ev, rev in led.seen:
        if kind == "round":
            assert rev == ROUND_EVENTS[(f, t)] and ev in (rev, "JobCompleted"), (f, t, ev, rev)
        else:
            assert OTHER_EVENTS[(kind, f, t)] == ev, (kind, f, t, ev)
    others = {(kind, f, t) for kind, f, t, _, _ in led.seen if kind != "round"}
    assert others >= {("job", "active", "completed"), ("org", "active", "suspended"), ("org", "suspended", "active"),
                      ("statusprop", "pending", "applied"), ("stakeprop", "pending", "applied")}
    completions = [(ev, rev) for kind, f, t, ev, rev in led.seen if (kind, f, t) == ("job", "active", "completed")]
    assert completions == [("JobCompleted", "RoundFinalized"), ("JobCompleted", "RoundFailed")]
    assert set(led.writes) == WRITES, f"write transactions never exercised: {sorted(WRITES - set(led.writes))}"
