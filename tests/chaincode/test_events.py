"""Every write transaction announces itself with exactly one chaincode event carrying what a node needs to
act without reading the ledger again."""
from __future__ import annotations

from typing import Any

from .harness import ORGS, T0, Ledger, init, job_spec
from . import identities as ids
from .rounds_helper import Consortium, deltas_for

A = ids.admin


class Counting(Ledger):
    def __init__(self) -> None:
        super().__init__()
        self.names: dict[str, set[str]] = {}

    def call(self, who: bytes, fn: str, *args: Any, **kw: Any) -> Any:
        n = len(self.stub.events)
        writes = len([x for x in self.stub.rw_log if x.writes])
        out = super().call(who, fn, *args, **kw)
        if len([x for x in self.stub.rw_log if x.writes]) > writes:
            assert len(self.stub.events) == n + 1, f"{fn} committed without an event"
            self.names.setdefault(fn, set()).add(self.stub.events[-1].name)
        return out


def test_every_write_emits_one_event_with_the_round_it_opened():
    led = Counting()
    init(led)
    led.call(A(ORGS[0]), "create_job", job_spec(rounds=3))
    c = Consortium(led)
    created = led.last_event.json()
    assert created["next"]["state"] == "registration" and created["next"]["stakes"] == {m: 100 for m in ORGS}
    c.register(1, ORGS)
    pub = c.priv[(ORGS[2], 1)].public_key().public_bytes_raw().hex()
    assert led.last_event.json() == {"job_id": "job1", "round": 1, "msp_id": ORGS[2], "public_key": pub,
                                     "tx_id": led.last_event.tx_id}
    c.start(1)
    started = led.last_event.json()["record"]
    assert started["state"] == "collecting" and sorted(started["public_keys"]) == ORGS
    c.submit(1, deltas_for(ORGS[:2]))
    sub = led.last_event.json()
    assert sub["msp_id"] == ORGS[1] and sub["sha256"] and sub["sample_count"] == 300 and sub["size"] == 32
    led.t = T0 + 301
    c.reveal(1, ORGS[:2], [ORGS[2]])
    assert led.last_event.json()["left_out"] == [ORGS[2]]
    res = c.result(1)
    c.vote(1, ORGS[:2], res)
    voted = led.last_event.json()
    assert voted["approve"] is True and voted["result_key"] and voted["next_public_key"]
    c.finalize(1)
    fin = led.last_event.json()
    assert fin["state"] == "finalized" and fin["version"] == 1 and fin["next"]["participants"] == ORGS[:2]
    c.register(3, [ORGS[2]])
    c.full_round(2, deltas_for(ORGS[:2], 1))
    c.submit(3, deltas_for(ORGS, 2))
    res = c.result(3)
    c.vote(3, ORGS, res, approve=False)
    c.finalize(3)
    assert led.last_event.name == "JobCompleted" and led.last_event.json()["round_event"] == "RoundFailed"
    led.call(A(ORGS[0]), "create_job", job_spec("job2"))
    led.t += 61
    c2 = Consortium(led, "job2")
    c2.start(1)                                  # nobody registered: the round fails, round 2 opens
    assert led.last_event.name == "RoundFailed"
    assert led.names == {"init_consortium": {"ConsortiumInitialized"}, "create_job": {"JobCreated"},
                         "register": {"Registered"}, "start_round": {"RoundStarted", "RoundFailed"},
                         "submit_update": {"UpdateSubmitted"}, "reveal_seeds": {"SeedsRevealed"},
                         "vote": {"Voted"}, "finalize_round": {"RoundFinalized", "JobCompleted"}}


DP = {"enabled": True, "clip_norm_milli": 1000, "noise_multiplier_milli": 1100, "epsilon_budget_milli": 2000}


def test_epsilon_is_spent_by_every_round_whose_aggregate_was_computable():
    led = Ledger()
    init(led)
    led.call(A(ORGS[0]), "create_job", job_spec(rounds=3, dp=DP))
    c = Consortium(led)
    c.register(1, ORGS)
    c.start(1)
    from .harness import meta_for
    for r, eps in ((1, {"Org1MSP": 700, "Org2MSP": 800, "Org3MSP": 750}), (2, {"Org1MSP": 800, "Org2MSP": 900})):
        for m, e in eps.items():
            p = c.payload(r, m, deltas_for(ORGS)[m])
            c.payloads.setdefault(r, {})[m] = p
            led.call(ids.trainer(m), "submit_update", "job1", r, meta_for(p, c.samples[m], dp_epsilon_milli=e),
                     transient={"update": p})
        if r == 1:
            c.vote(1, ORGS, c.result(1), approve=False)        # the vote fails: privacy is spent anyway
            out = c.finalize(1)
            assert out["state"] == "failed" and out["outcome"]["dp_epsilon_total_milli"] == 800
            assert c.round(2)["state"] == "collecting"     # the no-voters' ballots carried their keys
        else:
            led.t += 301
            c.reveal(2, ["Org1MSP", "Org2MSP"], ["Org3MSP"])
            c.vote(2, ["Org1MSP", "Org2MSP"], c.result(2))
            out = c.finalize(2)
    v = led.call(ids.trainer(ORGS[0]), "get_version", "job1", "latest")
    assert v["dp_epsilon_milli"] == 900 and v["dp_epsilon_total_milli"] == 1700 and not v["dp_budget_exceeded"]
    assert led.call(ids.trainer(ORGS[0]), "get_job", "job1")["dp_epsilon_spent_milli"] == 1700
    p = c.payload(3, "Org1MSP", deltas_for(ORGS)["Org1MSP"])
    led.reject(ids.trainer("Org1MSP"), "submit_update", "job1", 3, meta_for(p), transient={"update": p},
               match="meta.dp_epsilon_milli is required")
