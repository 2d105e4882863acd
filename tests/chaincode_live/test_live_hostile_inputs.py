"""Live: a catalog of hostile inputs to every transaction of the contract, each refused with its own
message and leaving the world as it was (issue 13, item 8).

One module-scoped job (``World``) is driven through the Gateway on the session's network: participants
Org1 and Org2 (Org3 is a member that takes no part), round 1 finalized into version 1, round 2
collecting with Org1's update in (stage 0: submissions); for the cases of stage 1 Org2 submits and
Org1 votes (voting). Two governance proposals by Org1 stay pending. Every case then sends one hostile
call -- malformed JSON, wrong types, huge and deeply nested values, NaN and infinities as JSON numbers
and as strings, unknown ids, the wrong round, duplicates, wrong lengths and hashes, a non-member target,
an org that is not a participant, auditors and trainers on admin operations, over-transfers, double
approvals, reused keys, forged timestamps -- and asserts the contract's status and message (bounded:
at most 600 characters, never more than 200 of any argument), and that :func:`world_snapshot` --
every peer's ledger height, the orgs, the policy, the job, both rounds' reports, versions, aliases, the
proposals and the keys the cases try to create -- is what it was before.

Run it on ports of its own: ``FEDFABRIC_TEST_PORT_OFFSET=16000`` (see tests/ports.py).
"""
from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np
import pytest

from fedfabric.client import FedFabricClient, Rejected, _rejection
from fedfabric.ledger import CommitError, EndorseError, EvaluateError
from fedfabric_protocol import codec
from fedfabric_protocol.records import Ballot

from tests.fuzz.hostile import echoed, texts_in

from . import helpers as H

pytestmark = pytest.mark.live

N = 100                                  # parameters of the job's model
O1, O2, O3 = "Org1MSP", "Org2MSP", "Org3MSP"
MAX_MESSAGE = 600
HUGE = "x" * 100_000
READS = {"get_org", "list_orgs", "org_history", "get_policy", "get_job", "list_jobs", "get_round", "list_rounds",
         "get_update", "get_revealed_seeds", "get_version", "list_versions", "list_aliases", "lineage",
         "compare_versions", "round_report", "org_report", "key_history"}
WRITES = ("init_consortium", "transfer_stake", "propose_stake_adjustment", "approve_stake_adjustment",
          "propose_status_change", "approve_status_change", "create_job", "register", "start_round", "submit_update",
          "reveal_seeds", "vote", "finalize_round", "set_alias", "set_tag")


def j(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def nested(depth: int) -> str:
    return '{"a":' * depth + "0" + "}" * depth


class World:
    """The module's job, its rounds' state, the clients of every role, and the snapshot of everything."""

    def __init__(self, cons: H.Consortium) -> None:
        self.cons = cons
        self.job = H.LiveJob(cons, H.secure_job_spec(H.uid("hostile"), N, window_s=300, rounds=3, msps=[O1, O2]))
        self.id = self.job.job_id
        self.new_job, self.new_prop, self.new_alias = H.uid("hostile-new"), H.uid("p-new"), "staging"
        self.gateways: list = []
        self.clients: dict[str, FedFabricClient] = {}
        for m, p in cons.parties.items():
            n = m[3]
            self.clients[f"admin{n}"], self.clients[f"trainer{n}"] = p.admin, p.trainer
            gw, auditor = cons.client(p.org, "Auditor")
            self.gateways.append(gw)
            self.clients[f"auditor{n}"] = auditor
        self.reader = cons.parties[O1].trainer
        self.stage = -1
        self.last: Optional[dict] = None       # the snapshot after the previous case
        self.result = None                     # the round-2 result, once everyone submitted
        self.pool = ThreadPoolExecutor(max_workers=4)

    def setup(self) -> None:
        """Round 1 finalized (version 1), round 2 collecting with Org1's update in; pending proposals."""
        lj, admin = self.job, self.clients["admin1"]
        lj.create()
        lj.full_round(lj.start(who=[O1, O2]), seed=1)
        self.run2 = lj.submit(H.RoundRun(2), seed=2, who=[O1])
        self.p_stake, self.p_status = H.uid("p-stake"), H.uid("p-status")
        self.cons.synced(admin.propose_stake_adjustment(self.p_stake, O2, 1, "hostile catalog: stays pending"))
        self.cons.synced(admin.propose_status_change(self.p_status, O3, "suspended", "hostile catalog: stays pending"))
        # Org2's well-formed update for round 2 (what the hostile submissions are variants of)
        self.payload = codec.pack(codec.from_signed(np.arange(N) * 7))
        self.meta = H.update_meta(self.payload, N, 200, 1)
        self.stage = 0

    def at(self, stage: int) -> None:
        """Move the world forward to ``stage`` (stage 1: Org2 submitted, Org1 voted on the result)."""
        if self.stage == -1:
            self.setup()
        if stage >= 1 > self.stage:
            self.job.submit(self.run2, seed=2, who=[O2])
            self.result = self.job.compute(self.run2)
            self.cons.synced(self.clients["trainer1"].vote(self.id, 2, Ballot(True, self.result, {"val_acc_milli": 900},
                                                                                self.job.key(O1, 3).hex())))
            self.stage, self.last = 1, None

    def key(self, msp: str, r: int) -> str:
        return self.job.key(msp, r).hex()

    def stake(self, msp: str) -> int:
        return self.reader.get_org(msp)["stake"]

    def ballot(self, **over: Any) -> dict:
        """A well-formed approving ballot on the round-2 result (as far as the fixture knows it)."""
        res = self.result
        b = {"approve": True, "metrics": {"val_acc_milli": 900}, "next_public_key": "cd" * 32,
             "aggregate_hash": res.aggregate_hash if res else H.h("agg"),
             "model_hash": res.model_hash if res else H.h("model"), "contributors": [O1, O2], "flagged": []}
        b.update(over)
        return {k: v for k, v in b.items() if v is not ...}

    def spec(self, **over: Any) -> dict:
        s = H.secure_job_spec(self.new_job, N, window_s=300, rounds=3, msps=[O1, O2])
        s.update(over)
        return s

    def hyper(self, **over: Any) -> dict:
        return {"dataset": "breast_cancer", "arch": "logreg", "shards": [O1, O2], **over}

    def close(self) -> None:
        self.pool.shutdown()
        self.job.close()
        for gw in self.gateways:
            gw.close()


def world_snapshot(world: World) -> dict:
    """What the catalog must never change, read through the Gateway (in parallel): every peer's ledger
    height, the orgs, the policy, the job, both rounds' reports, versions, aliases, the proposals, and the
    history of every key a case tries to create."""
    r, job = world.reader, world.id
    reads = {"heights": world.cons.heights, "orgs": r.list_orgs, "policy": r.get_policy,
             "job": lambda: r.get_job(job), "round1": lambda: r.round_report(job, 1),
             "round2": lambda: r.round_report(job, 2), "versions": lambda: r.list_versions(job),
             "aliases": lambda: r.list_aliases(job),
             "stake_proposal": lambda: r.key_history("stakeprop", [world.p_stake]),
             "status_proposal": lambda: r.key_history("statusprop", [world.p_status]),
             "new_job": lambda: r.key_history("job", [world.new_job]),
             "new_stake_proposal": lambda: r.key_history("stakeprop", [world.new_prop]),
             "new_status_proposal": lambda: r.key_history("statusprop", [world.new_prop]),
             "new_alias": lambda: r.key_history("alias", [job, world.new_alias])}
    futures = {k: world.pool.submit(f) for k, f in reads.items()}
    return {k: f.result() for k, f in futures.items()}


@pytest.fixture(scope="module")
def world(live_network) -> Iterator[World]:
    with H.initialized_consortium(live_network) as cons:
        cons.wait_endorsers()
        w = World(cons)
        try:
            yield w
        finally:
            w.close()


@dataclass(frozen=True)
class Case:
    """One hostile call: who sends it, what, the status and message (a regex, ``@JOB`` for the job's id)
    the contract must answer with; ``at`` forges the proposal's timestamp (seconds from now, or 0)."""

    id: str
    who: str
    fn: str
    args: Callable[[World], list]
    status: int
    match: str
    stage: int = 0
    transient: Optional[Callable[[World], dict]] = None
    at: Optional[int] = None


def C(id: str, who: str, fn: str, args: Any, status: int, match: str, **kw: Any) -> Case:
    return Case(id, who, fn, args if callable(args) else (lambda w, a=args: list(a)), status, match, **kw)


def job_args(*rest: Any) -> Callable[[World], list]:
    """``[job id, *rest]``; callables in ``rest`` get the world."""
    return lambda w: [w.id, *[x(w) if callable(x) else x for x in rest]]


def meta(**over: Any) -> Callable[[World], str]:
    """Org2's round-2 update record with ``over`` replaced (``...`` deletes a field)."""
    def build(w: World) -> str:
        m = {**w.meta, **over}
        return j({k: v for k, v in m.items() if v is not ...})
    return build


def training(**over: Any) -> Callable[[World], str]:
    return lambda w: j({**w.meta, "training": {**w.meta["training"], **over}})


def payload(w: World) -> dict:
    return {"update": w.payload}


PARSE = r"{fn}: cannot parse argument '{arg}' as {type}"
SKEW = (r"clock skew: the transaction's timestamp \S+ is [+-]\d+ s from this endorser's clock "
        r"\(at most ±\d+ s allowed\)")
NOT_PART = r"{fn}: Org3MSP is not a participant of job @JOB \(participants: Org1MSP, Org2MSP\)"
READ_ONLY = r"^{fn}: auditors are read-only$"
TRAINER = r"^{fn}: role 'trainer' is not allowed \(requires admin\)$"
ID = r"must match \^\[A-Za-z0-9\]\[A-Za-z0-9\._-\]\{0,63\}\$, got "
NOT_JSON = "floats are not allowed on the ledger"
HEX = "must be a lowercase hex SHA-256 \\(64 characters\\)"

CASES = [
    # ---- init_consortium: once, by an admin; the router parses its arguments first
    C("init-again", "admin1", "init_consortium", [j([{"msp_id": O1, "stake": 100}]), "2/3"], 409,
      "^consortium already initialized$"),
    C("init-by-trainer", "trainer2", "init_consortium", [j([{"msp_id": O2, "stake": 1}]), "1/2"], 409,
      "^consortium already initialized$"),
    C("init-malformed-json", "admin1", "init_consortium", ['[{"msp_id": "Org1MSP",', "2/3"], 500,
      PARSE.format(fn="init_consortium", arg="orgs", type="list")),
    C("init-nested-100k", "admin1", "init_consortium", ["[" * 100_000 + "]" * 100_000, "2/3"], 500,
      "init_consortium: argument 'orgs' is nested too deeply"),
    C("init-argument-count", "admin1", "init_consortium", ["[]"], 500, "init_consortium: expected 2 arguments, got 1"),
    # ---- transfer_stake
    C("transfer-over", "admin1", "transfer_stake", lambda w: [O2, str(w.stake(O1) + 1)], 400,
      r"^transfer_stake: Org1MSP holds \d+ stake, cannot transfer \d+$"),
    C("transfer-to-self", "admin1", "transfer_stake", [O1, "1"], 400, "cannot transfer to your own org"),
    C("transfer-zero", "admin1", "transfer_stake", [O2, "0"], 400, r"^amount 0 out of range \[1, 1000000000000000\]$"),
    C("transfer-negative", "admin1", "transfer_stake", [O2, "-5"], 400, r"^amount -5 out of range \[1, "),
    C("transfer-huge", "admin1", "transfer_stake", [O2, "9" * 4000],
      400, r"^amount 9{40}… \(4000 characters\) out of range"),
    C("transfer-float", "admin1", "transfer_stake", [O2, "1.5"], 500, PARSE.format(fn="transfer_stake", arg="amount",
                                                                                   type="int")),
    C("transfer-nan", "admin1", "transfer_stake", [O2, "NaN"], 500, PARSE.format(fn="transfer_stake", arg="amount",
                                                                                 type="int")),
    C("transfer-non-member", "admin1", "transfer_stake", ["Org9MSP", "1"], 404,
      "^transfer_stake: Org9MSP is not a member of the consortium$"),
    C("transfer-id-newline", "admin1", "transfer_stake", [O2 + "\n", "1"], 400, "transfer_stake: to_msp " + ID),
    C("transfer-id-huge", "admin1", "transfer_stake", [HUGE, "1"], 400, r"to_msp must match .* \(100002 characters\)"),
    C("transfer-by-trainer", "trainer1", "transfer_stake", [O2, "1"], 403, TRAINER.format(fn="transfer_stake")),
    C("transfer-by-auditor", "auditor1", "transfer_stake", [O2, "1"], 403, READ_ONLY.format(fn="transfer_stake")),
    C("transfer-forged-future", "admin1", "transfer_stake", [O2, "1"], 400, SKEW, at=3600),
    # ---- stake proposals
    C("propose-stake-duplicate-id", "admin2", "propose_stake_adjustment", lambda w: [w.p_stake, O3, "1", "again"], 409,
      r"^stake proposal p-stake-\w+ already exists$"),
    C("propose-stake-zero", "admin1", "propose_stake_adjustment", lambda w: [w.new_prop, O2, "0", "r"], 400,
      "^delta must not be zero$"),
    C("propose-stake-over-burn", "admin1", "propose_stake_adjustment",
      lambda w: [w.new_prop, O2, str(-w.stake(O2) - 1), "burn"], 400, r"^Org2MSP holds \d+ stake; cannot burn \d+$"),
    C("propose-stake-non-member", "admin1", "propose_stake_adjustment", lambda w: [w.new_prop, "Org9MSP", "5", "r"],
      404, "^Org9MSP is not a member of the consortium$"),
    C("propose-stake-empty-reason", "admin1", "propose_stake_adjustment", lambda w: [w.new_prop, O2, "5", ""], 400,
      "^reason must be 1..256 characters$"),
    C("propose-stake-long-reason", "admin1", "propose_stake_adjustment", lambda w: [w.new_prop, O2, "5", "r" * 300],
      400, "^reason must be 1..256 characters$"),
    C("propose-stake-bad-id", "admin1", "propose_stake_adjustment", [" bad id!", O2, "5", "r"],
      400, "^proposal_id " + ID),
    C("propose-stake-huge-id", "admin1", "propose_stake_adjustment", [HUGE, O2, "5", "r"], 400,
      r"^proposal_id must match .* \(100002 characters\)$"),
    C("propose-stake-inf", "admin1", "propose_stake_adjustment", lambda w: [w.new_prop, O2, "inf", "r"], 500,
      PARSE.format(fn="propose_stake_adjustment", arg="delta", type="int")),
    C("propose-stake-out-of-range", "admin1", "propose_stake_adjustment", lambda w: [w.new_prop, O2, str(10**16), "r"],
      400, r"^delta 10000000000000000 out of range \[-1000000000000000, 1000000000000000\]$"),
    C("propose-stake-by-trainer", "trainer1", "propose_stake_adjustment", lambda w: [w.new_prop, O2, "5", "r"], 403,
      TRAINER.format(fn="propose_stake_adjustment")),
    C("propose-stake-by-auditor", "auditor2", "propose_stake_adjustment", lambda w: [w.new_prop, O2, "5", "r"], 403,
      READ_ONLY.format(fn="propose_stake_adjustment")),
    C("approve-stake-twice", "admin1", "approve_stake_adjustment", lambda w: [w.p_stake], 409,
      r"^Org1MSP already approved stake proposal p-stake-\w+$"),
    C("approve-stake-unknown", "admin2", "approve_stake_adjustment", ["no-such-proposal"], 404,
      "^stake proposal no-such-proposal not found$"),
    C("approve-stake-of-status-kind", "admin2", "approve_stake_adjustment", lambda w: [w.p_status], 404,
      r"^stake proposal p-status-\w+ not found$"),
    C("approve-stake-nul-id", "admin2", "approve_stake_adjustment", ["\x00"], 400, r"^proposal_id " + ID + r"'\\x00'$"),
    C("approve-stake-by-trainer", "trainer2", "approve_stake_adjustment", lambda w: [w.p_stake], 403,
      TRAINER.format(fn="approve_stake_adjustment")),
    C("approve-stake-by-auditor", "auditor2", "approve_stake_adjustment", lambda w: [w.p_stake], 403,
      READ_ONLY.format(fn="approve_stake_adjustment")),
    C("approve-stake-forged-1970", "admin2", "approve_stake_adjustment", lambda w: [w.p_stake], 400, SKEW, at=0),
    # ---- status proposals
    C("propose-status-duplicate-id", "admin2", "propose_status_change", lambda w: [w.p_status, O3, "suspended", "r"],
      409, r"^status proposal p-status-\w+ already exists$"),
    C("propose-status-unknown-status", "admin1", "propose_status_change",
      lambda w: [w.new_prop, O2, "deleted", "r"], 400, "^status must be one of active, suspended, got 'deleted'$"),
    C("propose-status-huge-status", "admin1", "propose_status_change", lambda w: [w.new_prop, O2, HUGE, "r"], 400,
      r"^status must be one of active, suspended, got 'x{39}… \(100002 characters\)$"),
    C("propose-status-already-active", "admin1", "propose_status_change", lambda w: [w.new_prop, O2, "active", "r"],
      409, "^Org2MSP is already active$"),
    C("propose-status-non-member", "admin1", "propose_status_change",
      lambda w: [w.new_prop, "Org9MSP", "suspended", "r"], 404, "^Org9MSP is not a member of the consortium$"),
    C("propose-status-by-trainer", "trainer3", "propose_status_change", lambda w: [w.new_prop, O2, "suspended", "r"],
      403, TRAINER.format(fn="propose_status_change")),
    C("propose-status-by-auditor", "auditor3", "propose_status_change", lambda w: [w.new_prop, O2, "suspended", "r"],
      403, READ_ONLY.format(fn="propose_status_change")),
    C("approve-status-twice", "admin1", "approve_status_change", lambda w: [w.p_status], 409,
      r"^Org1MSP already approved status proposal p-status-\w+$"),
    C("approve-status-unknown", "admin3", "approve_status_change", ["nope"], 404, "^status proposal nope not found$"),
    C("approve-status-by-trainer", "trainer2", "approve_status_change", lambda w: [w.p_status], 403,
      TRAINER.format(fn="approve_status_change")),
    C("approve-status-by-auditor", "auditor1", "approve_status_change", lambda w: [w.p_status], 403,
      READ_ONLY.format(fn="approve_status_change")),
    # ---- create_job: the spec validator, field by field
    C("create-malformed-json", "admin1", "create_job", ['{"job_id": '], 500,
      PARSE.format(fn="create_job", arg="spec", type="dict")),
    C("create-nested-100k", "admin1", "create_job", ["[" * 100_000 + "]" * 100_000], 500,
      "create_job: argument 'spec' is nested too deeply"),
    C("create-list", "admin1", "create_job", ["[]"], 400, "^spec must be a JSON object, got list$"),
    C("create-duplicate-job", "admin1", "create_job", lambda w: [j(w.spec(job_id=w.id))], 409,
      "^job @JOB already exists$"),
    C("create-nan-number", "admin1", "create_job", lambda w: [j(w.spec(rounds=float("nan")))], 400,
      "^spec.rounds: " + NOT_JSON),
    C("create-infinity-number", "admin1", "create_job",
      lambda w: [j(w.spec(hyperparams=w.hyper(lr=float("inf"))))], 400, "^spec.hyperparams.lr: " + NOT_JSON),
    C("create-nan-string", "admin1", "create_job", lambda w: [j(w.spec(hyperparams=w.hyper(lr="NaN")))], 400,
      r"^spec.hyperparams.lr='NaN' out of range \[0.000001, 10\]$"),
    C("create-infinity-string", "admin1", "create_job", lambda w: [j(w.spec(hyperparams=w.hyper(mu="Infinity")))],
      400, r"^spec.hyperparams.mu='Infinity' out of range \[0, 100\]$"),
    C("create-decimal-a-million-places", "admin1", "create_job",
      lambda w: [j(w.spec(hyperparams=w.hyper(mu="1e-999990")))], 400,
      "^spec.hyperparams.mu='1e-999990' has more than 18 decimal places$"),
    C("create-seed-not-a-number", "admin1", "create_job",
      lambda w: [j(w.spec(hyperparams=w.hyper(seed="not-a-number")))], 400,
      "^spec.hyperparams.seed must be an integer, got 'not-a-number'$"),
    C("create-seed-400-digits", "admin1", "create_job", lambda w: [j(w.spec(hyperparams=w.hyper(seed=10**400)))],
      400, r"^spec.hyperparams.seed=10{63}… \(401 characters\) out of range \[0, 2147483647\]$"),
    C("create-1mib-string", "admin1", "create_job",
      lambda w: [j(w.spec(hyperparams=w.hyper(dataset="d" * (1 << 20))))], 400,
      r"^spec.hyperparams.dataset must be one of .*, got 'd{63}… \(1048578 characters\)$"),
    C("create-900-deep", "admin1", "create_job", lambda w: [j(w.spec())[:-1] + ',"dp":' + nested(900) + "}"], 400,
      "^spec.dp.a.a.a.a.a.a.a.a: nested deeper than 8 levels$"),
    C("create-unknown-field", "admin1", "create_job", lambda w: [j(w.spec(colour="blue"))], 400,
      r"^spec: unknown field\(s\) 'colour' \(allowed: "),
    C("create-rounds-as-string", "admin1", "create_job", lambda w: [j(w.spec(rounds="3"))], 400,
      "^spec.rounds must be an integer, got '3'$"),
    C("create-rounds-zero", "admin1", "create_job", lambda w: [j(w.spec(rounds=0))], 400,
      r"^spec.rounds=0 out of range \[1, 10000\]$"),
    C("create-non-member-participant", "admin1", "create_job",
      lambda w: [j(w.spec(participants=[O1, "Org9MSP"], hyperparams=w.hyper(shards=[O1, "Org9MSP"])))], 400,
      "^spec.participants: Org9MSP is not a member of the consortium$"),
    C("create-participant-twice", "admin1", "create_job", lambda w: [j(w.spec(participants=[O1, O1, O2]))], 400,
      "^spec.participants lists Org1MSP more than once$"),
    C("create-quorum-above-one", "admin1", "create_job", lambda w: [j(w.spec(quorum="3/2"))], 400,
      r"^spec.quorum 3/2 must be a share in \(0, 1\]$"),
    C("create-secure-median", "admin1", "create_job", lambda w: [j(w.spec(aggregation={"rule": "median"}))], 400,
      "^spec.aggregation.rule 'median' needs visible updates: secure mode supports only"),
    C("create-too-few-participants", "admin1", "create_job", lambda w: [j(w.spec(min_participants=3))], 400,
      "^spec.participants has 2 orgs, fewer than spec.min_participants=3$"),
    C("create-job-id-newline", "admin1", "create_job", lambda w: [j(w.spec(job_id=w.new_job + "\n"))], 400,
      r"^spec.job_id " + ID + r"'hostile-new-\w+\\n'$"),
    C("create-job-id-huge", "admin1", "create_job", lambda w: [j(w.spec(job_id=HUGE))], 400,
      r"^spec.job_id must match .* \(100002 characters\)$"),
    C("create-hash-wrong-length", "admin1", "create_job",
      lambda w: [j(w.spec(model={**w.spec()["model"], "initial_hash": "ab" * 31}))], 400,
      "^spec.model.initial_hash " + HEX),
    C("create-num-params-huge", "admin1", "create_job",
      lambda w: [j(w.spec(model={**w.spec()["model"], "num_params": 1 << 40}))], 400,
      r"^spec.model.num_params=1099511627776 out of range \[1, 67108864\]$"),
    C("create-shards-not-participants", "admin1", "create_job",
      lambda w: [j(w.spec(hyperparams=w.hyper(shards=[O1, O3])))], 400,
      r"^spec.hyperparams.shards \(Org1MSP, Org3MSP\) must name exactly the participants \(Org1MSP, Org2MSP\)$"),
    C("create-by-trainer", "trainer1", "create_job", lambda w: [j(w.spec())], 403, TRAINER.format(fn="create_job")),
    C("create-by-auditor", "auditor1", "create_job", lambda w: [j(w.spec())], 403, READ_ONLY.format(fn="create_job")),
    C("create-forged-future", "admin1", "create_job", lambda w: [j(w.spec())], 400, SKEW, at=600),
    # ---- register (round 2 collects: keys go to round 3)
    C("register-collecting-round", "trainer2", "register", job_args("2", "ab" * 32), 409,
      r"^round 2 of job @JOB takes no registrations now \(round 2 is collecting; "),
    C("register-round-past-the-job", "trainer2", "register", job_args("99", "ab" * 32), 409,
      "^job @JOB has 3 rounds; there is no round 99$"),
    C("register-round-huge", "trainer2", "register", job_args("9" * 4000, "ab" * 32), 409,
      r"^job @JOB has 3 rounds; there is no round 9{20}… \(4000 characters\)$"),
    C("register-key-reused", "trainer2", "register", job_args("3", lambda w: w.key(O2, 2)), 409,
      "^public key reused from the previous round; each round needs a fresh X25519 key$"),
    C("register-key-short", "trainer2", "register", job_args("3", "ab" * 31), 400,
      "^public_key must be a raw X25519 public key as 64 lowercase hex characters$"),
    C("register-key-uppercase", "trainer2", "register", job_args("3", "AB" * 32), 400,
      "^public_key must be a raw X25519 public key as 64 lowercase hex characters$"),
    C("register-key-newline", "trainer2", "register", job_args("3", "ab" * 32 + "\n"), 400,
      "^public_key must be a raw X25519 public key as 64 lowercase hex characters$"),
    C("register-non-participant", "trainer3", "register", job_args("3", "ab" * 32),
      403, NOT_PART.format(fn="register")),
    C("register-by-auditor", "auditor2", "register", job_args("3", "ab" * 32), 403, READ_ONLY.format(fn="register")),
    C("register-unknown-job", "trainer2", "register", ["no-such-job", "3", "ab" * 32],
      404, "^job no-such-job not found$"),
    C("register-nul-job", "trainer2", "register", ["job\x00x", "3", "ab" * 32],
      400, r"^job_id " + ID + r"'job\\x00x'$"),
    C("register-round-float", "trainer2", "register", job_args("3.0", "ab" * 32), 500,
      PARSE.format(fn="register", arg="round", type="int")),
    C("register-forged-past", "trainer2", "register", job_args("3", "ab" * 32), 400, SKEW, at=-60),
    # ---- start_round
    C("start-collecting-round", "trainer1", "start_round", job_args("2"), 409,
      "^round 2 of job @JOB is collecting, not registration$"),
    C("start-finalized-round", "trainer1", "start_round", job_args("1"), 409,
      "^round 1 of job @JOB is finalized, not registration$"),
    C("start-unopened-round", "trainer1", "start_round", job_args("3"), 404, "^round 3 of job @JOB not found$"),
    C("start-round-zero", "trainer1", "start_round", job_args("0"),
      400, r"^round must be an integer in \[1, 10000\], got '0'$"),
    C("start-non-participant", "admin3", "start_round", job_args("2"), 403, NOT_PART.format(fn="start_round")),
    C("start-by-auditor", "auditor1", "start_round", job_args("2"), 403, READ_ONLY.format(fn="start_round")),
    # ---- submit_update (Org2 has not submitted yet; its payload is well formed unless the case says)
    C("submit-hash-mismatch", "trainer2", "submit_update", job_args("2", meta(sha256=H.h("other"))), 400,
      r"^hash mismatch: the payload hashes to [0-9a-f]{64}, meta.sha256 is [0-9a-f]{64}$", transient=payload),
    C("submit-size-wrong", "trainer2", "submit_update", job_args("2", meta(size=4 * N + 4)), 400,
      r"^wrong length: meta.size=404, the job's model has 100 parameters \(400 bytes\)$", transient=payload),
    C("submit-payload-short", "trainer2", "submit_update", job_args("2", lambda w: meta(sha256=H.h(w.payload[:-4]))(w)),
      400, "^wrong length: 99 values, expected 100$", transient=lambda w: {"update": w.payload[:-4]}),
    C("submit-payload-not-words", "trainer2", "submit_update", job_args("2", meta()), 400,
      "^wrong dtype: 401 bytes is not a whole number of uint32le words$",
      transient=lambda w: {"update": w.payload + b"\0"}),
    C("submit-shape-wrong", "trainer2", "submit_update", job_args("2", meta(shape_digest=H.h("shape"))), 400,
      "^wrong shape: shape digest ", transient=payload),
    C("submit-dtype-float32", "trainer2", "submit_update", job_args("2", meta(dtype="float32")), 400,
      "^wrong dtype: meta.dtype must be uint32le$", transient=payload),
    C("submit-samples-zero", "trainer2", "submit_update", job_args("2", meta(sample_count=0)), 400,
      r"^meta.sample_count=0 out of range \[1, 2147483647\]$", transient=payload),
    C("submit-samples-nan", "trainer2", "submit_update", job_args("2", meta(sample_count=float("nan"))), 400,
      "^meta.sample_count: " + NOT_JSON, transient=payload),
    C("submit-samples-infinity-string", "trainer2", "submit_update", job_args("2", meta(sample_count="Infinity")),
      400, "^meta.sample_count must be an integer, got 'Infinity'$", transient=payload),
    C("submit-metric-float", "trainer2", "submit_update", job_args("2", meta(metrics={"acc": 0.5})), 400,
      "^meta.metrics.acc: " + NOT_JSON, transient=payload),
    C("submit-metric-1e999", "trainer2", "submit_update",
      job_args("2", lambda w: meta()(w).replace('"metrics": {', '"metrics": {"x": 1e999, ')), 400,
      "^meta.metrics.x: " + NOT_JSON, transient=payload),
    C("submit-metric-lone-surrogate", "trainer2", "submit_update",
      job_args("2", lambda w: meta()(w).replace('"metrics": {', '"metrics": {"x": "\\ud800", ')), 400,
      r"^meta.metrics.x: not valid Unicode text \(a lone surrogate\)$", transient=payload),
    C("submit-metrics-too-many", "trainer2", "submit_update",
      job_args("2", meta(metrics={f"m{i}": i for i in range(65)})), 400,
      "^meta.metrics must be an object of at most 64 entries$", transient=payload),
    C("submit-loss-per-epoch-mismatch", "trainer2", "submit_update", job_args("2", training(epochs=3)), 400,
      r"^meta.training.loss_per_epoch must be 3 integers \(loss in micro-units, one per epoch\)$", transient=payload),
    C("submit-training-ends-before-start", "trainer2", "submit_update",
      job_args("2", lambda w: training(end=w.meta["training"]["start"] - 1)(w)), 400,
      r"^meta.training.end=\d+ out of range \[\d+, 1099511627776\]$", transient=payload),
    C("submit-unknown-field", "trainer2", "submit_update", job_args("2", meta(colour="blue")), 400,
      r"^meta: unknown field\(s\) 'colour' \(allowed: ", transient=payload),
    C("submit-huge-field-name", "trainer2", "submit_update", job_args("2", meta(**{HUGE: 1})), 400,
      r"^meta: unknown field\(s\) 'x{63}… \(100002 characters\) \(allowed: ", transient=payload),
    C("submit-meta-list", "trainer2", "submit_update", job_args("2", "[]"), 400,
      "^meta must be a JSON object, got list$", transient=payload),
    C("submit-meta-malformed", "trainer2", "submit_update", job_args("2", "{"), 500,
      PARSE.format(fn="submit_update", arg="meta", type="dict"), transient=payload),
    C("submit-meta-900-deep", "trainer2", "submit_update",
      job_args("2", lambda w: meta()(w).replace('"metrics": {', '"metrics": {"a": ' + nested(900) + ", ")), 400,
      "^meta.metrics.a.a.a.a.a.a.a.a: nested deeper than 8 levels$", transient=payload),
    C("submit-sha-uppercase", "trainer2", "submit_update",
      job_args("2", lambda w: meta(sha256=H.h(w.payload).upper())(w)), 400, "^meta.sha256 " + HEX, transient=payload),
    C("submit-endpoint-newline", "trainer2", "submit_update", job_args("2", meta(endpoint="node2.example:7443\n")),
      400, r"^meta.endpoint must match .*, got 'node2.example:7443\\n'$", transient=payload),
    C("submit-no-payload", "trainer2", "submit_update", job_args("2", meta()), 400,
      "^the update payload must be in the transient map under 'update'$"),
    C("submit-duplicate", "trainer1", "submit_update", job_args("2", meta()), 409,
      "^duplicate: Org1MSP already submitted an update for round 2 of job @JOB$", transient=payload),
    C("submit-wrong-round-past", "trainer2", "submit_update", job_args("1", meta()), 409,
      "^wrong round: job @JOB is at round 2, not 1$", transient=payload),
    C("submit-wrong-round-future", "trainer2", "submit_update", job_args("3", meta()), 409,
      "^wrong round: job @JOB is at round 2, not 3$", transient=payload),
    C("submit-non-participant", "trainer3", "submit_update", job_args("2", meta()), 403,
      NOT_PART.format(fn="submit_update"), transient=payload),
    C("submit-by-auditor", "auditor2", "submit_update", job_args("2", meta()), 403,
      READ_ONLY.format(fn="submit_update"), transient=payload),
    C("submit-forged-future", "trainer2", "submit_update", job_args("2", meta()), 400, SKEW, at=3600),
    # ---- reveal_seeds (nobody dropped out; the submission window is open)
    C("reveal-before-window-closes", "trainer1", "reveal_seeds", job_args("2", j([O2])), 409,
      r"^the submission window of round 2 is open until \d+; reveal for Org2MSP after it closes$",
      transient=lambda w: {"seeds": j({O2: "ab" * 32}).encode()}),
    C("reveal-by-non-submitter", "trainer2", "reveal_seeds", job_args("2", j([O1])), 403,
      "^Org2MSP did not submit in round 2; only survivors reveal seeds$"),
    C("reveal-for-non-participant", "trainer1", "reveal_seeds", job_args("2", j([O3])), 400,
      "^seeds are revealed for other participants of round 2, got Org3MSP$"),
    C("reveal-for-nobody", "trainer1", "reveal_seeds", job_args("2", "[]"), 400,
      "^seeds are revealed for other participants of round 2, got none$"),
    C("reveal-for-itself", "trainer1", "reveal_seeds", job_args("2", j([O1])), 400,
      "^seeds are revealed for other participants of round 2, got Org1MSP$"),
    C("reveal-left-out-not-a-list", "trainer1", "reveal_seeds", job_args("2", j(O2)), 400,
      "^left_out must be a JSON list of MSP ids$"),
    C("reveal-left-out-malformed", "trainer1", "reveal_seeds", job_args("2", "[Org2MSP]"), 500,
      PARSE.format(fn="reveal_seeds", arg="left_out", type="list")),
    C("reveal-non-participant", "trainer3", "reveal_seeds", job_args("2", j([O2])), 403,
      NOT_PART.format(fn="reveal_seeds")),
    C("reveal-by-auditor", "auditor1", "reveal_seeds", job_args("2", j([O2])),
      403, READ_ONLY.format(fn="reveal_seeds")),
    # ---- vote (the ballot is validated before the round's timing)
    C("vote-metric-nan", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(metrics={"acc": float("nan")}))), 400,
      "^ballot.metrics.acc: " + NOT_JSON),
    C("vote-approve-string", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(approve="yes"))), 400,
      "^ballot.approve must be true or false, got 'yes'$"),
    C("vote-aggregate-hash-short", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(aggregate_hash="ab" * 31))),
      400, "^ballot.aggregate_hash " + HEX),
    C("vote-contributor-twice", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(contributors=[O1, O1, O2]))),
      400, "^ballot.contributors lists an org twice$"),
    C("vote-flagged-outsider", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(flagged=[O3]))), 400,
      "^ballot.flagged must be a subset of ballot.contributors$"),
    C("vote-unknown-field", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(weight=1000))), 400,
      r"^ballot: unknown field\(s\) 'weight' \(allowed: "),
    C("vote-next-key-bad", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(next_public_key="zz" * 32))), 400,
      "^ballot.next_public_key " + HEX),
    C("vote-before-submissions-close", "trainer2", "vote", job_args("2", lambda w: j(w.ballot())), 409,
      r"^round 2 is collecting until \d+ \(1 of 2 submitted\)$"),
    C("vote-wrong-round", "trainer2", "vote", job_args("1", lambda w: j(w.ballot())), 409,
      "^wrong round: job @JOB is at round 2, not 1$"),
    C("vote-non-participant", "trainer3", "vote", job_args("2", lambda w: j(w.ballot())),
      403, NOT_PART.format(fn="vote")),
    C("vote-by-auditor", "auditor2", "vote", job_args("2", lambda w: j(w.ballot())), 403, READ_ONLY.format(fn="vote")),
    C("vote-forged-1970", "trainer2", "vote", job_args("2", lambda w: j(w.ballot())), 400, SKEW, at=0),
    # ---- finalize_round
    C("finalize-while-collecting", "trainer1", "finalize_round", job_args("2"), 409,
      r"^round 2 is collecting until \d+ \(1 of 2 submitted\)$"),
    C("finalize-wrong-round", "trainer1", "finalize_round", job_args("1"), 409,
      "^wrong round: job @JOB is at round 2, not 1$"),
    C("finalize-non-participant", "admin3", "finalize_round", job_args("2"), 403, NOT_PART.format(fn="finalize_round")),
    C("finalize-by-auditor", "auditor3", "finalize_round", job_args("2"), 403, READ_ONLY.format(fn="finalize_round")),
    C("finalize-forged-future", "trainer1", "finalize_round", job_args("2"), 400, SKEW, at=3600),
    # ---- set_alias / set_tag
    C("alias-unwritten-version", "admin1", "set_alias", job_args("staging", "2"), 404,
      "^version 2 of job @JOB not found$"),
    C("alias-latest", "admin1", "set_alias", job_args("latest", "1"), 400, "^alias 'latest' is managed by the ledger$"),
    C("alias-bad-name", "admin1", "set_alias", job_args("Prod!", "1"), 400, r"^alias must match \^\[a-z\]"),
    C("alias-huge-name", "admin1", "set_alias", job_args(HUGE, "1"),
      400, r"^alias must match \^\[a-z\]\[a-z0-9_-\]\{0,31\}\$$"),
    C("alias-version-nan", "admin1", "set_alias", job_args("staging", "NaN"), 500,
      PARSE.format(fn="set_alias", arg="version", type="int")),
    C("alias-version-negative", "admin1", "set_alias", job_args("staging", "-1"), 404,
      "^version -1 of job @JOB not found$"),
    C("alias-version-huge", "admin1", "set_alias", job_args("staging", "9" * 4000), 404,
      r"^version 9{20}… \(4000 characters\) of job @JOB not found$"),
    C("alias-unknown-job", "admin1", "set_alias", ["no-such-job", "staging", "1"], 404,
      "^version 1 of job no-such-job not found$"),
    C("alias-by-trainer", "trainer1", "set_alias", job_args("staging", "1"), 403, TRAINER.format(fn="set_alias")),
    C("alias-by-auditor", "auditor1", "set_alias", job_args("staging", "1"), 403, READ_ONLY.format(fn="set_alias")),
    C("tag-bad-name", "admin1", "set_tag", job_args("1", "bad tag", "v"), 400, r"^tag must match \^\[A-Za-z0-9\._/-\]"),
    C("tag-value-too-long", "admin1", "set_tag", job_args("1", "stage", "v" * 257), 400,
      "^tag value must be a string of at most 256 characters$"),
    C("tag-value-not-utf8", "admin1", "set_tag", job_args("1", "stage", b"\xed\xa0\x80"), 500,
      r"^set_tag: argument 'value' is not valid UTF-8 \(declare the parameter as bytes to receive raw bytes\)$"),
    C("tag-unwritten-version", "admin1", "set_tag", job_args("99", "stage", "v"), 404,
      "^version 99 of job @JOB not found$"),
    C("tag-by-trainer", "trainer2", "set_tag", job_args("1", "stage", "v"), 403, TRAINER.format(fn="set_tag")),
    C("tag-by-auditor", "auditor2", "set_tag", job_args("1", "stage", "v"), 403, READ_ONLY.format(fn="set_tag")),
    # ---- reads that take arguments
    C("get-job-unknown", "trainer1", "get_job", ["no-such-job"], 404, "^job no-such-job not found$"),
    C("get-job-nul", "trainer1", "get_job", ["a\x00b"], 400, r"^job_id " + ID + r"'a\\x00b'$"),
    C("get-job-huge", "auditor1", "get_job", [HUGE], 400, r"^job_id must match .* \(100002 characters\)$"),
    C("get-org-unknown", "trainer1", "get_org", ["Org9MSP"], 404, "^org Org9MSP not found$"),
    C("get-org-newline", "trainer1", "get_org", [O1 + "\n"], 400, r"^msp_id " + ID + r"'Org1MSP\\n'$"),
    C("org-history-max-rune", "trainer1", "org_history", ["\U0010ffff"], 400, r"^msp_id " + ID),
    C("list-jobs-page-zero", "trainer1", "list_jobs", ["0", ""], 400, r"^page_size must be in \[1, 1000\]$"),
    C("list-jobs-foreign-bookmark", "trainer1", "list_jobs", ["10", "\x00org\x00"], 400,
      r"^bookmark '\\x00org\\x00' is not one list_jobs returned$"),
    C("get-round-zero", "trainer1", "get_round", job_args("0"),
      400, r"^round must be an integer in \[1, 10000\], got '0'$"),
    C("get-round-unknown-job", "trainer1", "get_round", ["no-such-job", "1"],
      404, "^round 1 of job no-such-job not found$"),
    C("list-rounds-unknown-job", "trainer1", "list_rounds", ["no-such-job"], 404, "^job no-such-job not found$"),
    C("get-update-unknown-org", "trainer1", "get_update", job_args("2", "Org9MSP"), 404,
      "^update of Org9MSP in round 2 not found$"),
    C("get-update-purged", "trainer2", "get_update", job_args("1", O1), 503,
      "^the update of Org1MSP in round 1 is not available on this peer \\(yet\\)$"),
    C("get-update-non-participant", "trainer3", "get_update", job_args("2", O1), 403, NOT_PART.format(fn="get_update")),
    C("get-update-by-auditor", "auditor1", "get_update", job_args("2", O1), 403, READ_ONLY.format(fn="get_update")),
    C("get-seeds-none-revealed", "trainer2", "get_revealed_seeds", job_args("2", O1), 404,
      "^seed reveal of Org1MSP in round 2 not found$"),
    C("get-version-unknown-alias", "trainer1", "get_version", job_args("nope"), 404,
      "^job @JOB has no version or alias 'nope'$"),
    C("get-version-superscript-digit", "trainer1", "get_version", job_args("²"), 404,
      "^job @JOB has no version or alias '²'$"),
    C("get-version-4000-digits", "trainer1", "get_version", job_args("9" * 4000), 404,
      r"^job @JOB has no version or alias '9{63}… \(4002 characters\)$"),
    C("list-versions-unknown-job", "trainer1", "list_versions", ["no-such-job"], 404, "^job no-such-job not found$"),
    C("list-aliases-bad-id", "trainer1", "list_aliases", ["bad id"], 400, r"^job_id " + ID + r"'bad id'$"),
    C("lineage-unknown-ref", "trainer1", "lineage", job_args("staging"),
      404, "^job @JOB has no version or alias 'staging'$"),
    C("compare-unknown-version", "trainer1", "compare_versions", job_args("0", "7"),
      404, "^version 7 of job @JOB not found$"),
    C("round-report-unknown-round", "auditor2", "round_report", job_args("99"),
      404, "^round 99 of job @JOB not found$"),
    C("round-report-nul-job", "auditor2", "round_report", ["\x00", "1"], 400, r"^job_id " + ID),
    C("org-report-unknown", "auditor2", "org_report", ["Org9MSP"], 404, "^org Org9MSP not found$"),
    C("key-history-unknown-type", "auditor1", "key_history", ["nope", "[]"],
      400, r"^unknown object type 'nope' \(one of "),
    C("key-history-attrs-object", "auditor1", "key_history", ["job", "{}"],
      400, "^attrs must be a JSON list of at most 8 ids"),
    C("key-history-attrs-nul", "auditor1", "key_history", ["job", j(["\x00"])],
      400, "^attrs must be a JSON list of at most 8 ids"),
    C("key-history-attrs-nine", "auditor1", "key_history", ["job", j(["a"] * 9)],
      400, "^attrs must be a JSON list of at most 8 ids"),
    C("key-history-attrs-malformed", "auditor1", "key_history", ["job", "[a"], 500,
      PARSE.format(fn="key_history", arg="attrs", type="list")),
    # ---- stage 1: everyone submitted, Org1 voted
    C("submit-duplicate-after-all", "trainer2", "submit_update", job_args("2", meta()), 409,
      "^duplicate: Org2MSP already submitted an update for round 2 of job @JOB$", transient=payload, stage=1),
    C("vote-duplicate", "trainer1", "vote", job_args("2", lambda w: j(w.ballot(next_public_key=None))), 409,
      "^duplicate: Org1MSP already voted in round 2 of job @JOB$", stage=1),
    C("vote-next-key-reused", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(next_public_key=w.key(O2, 2)))),
      409, "^public key reused from the previous round; each round needs a fresh X25519 key$", stage=1),
    C("vote-contributors-subset", "trainer2", "vote", job_args("2", lambda w: j(w.ballot(contributors=[O1]))), 400,
      "^ballot.contributors has 1 updates, the job needs 2$", stage=1),
    C("vote-contributor-without-update", "trainer2", "vote",
      job_args("2", lambda w: j(w.ballot(contributors=[O1, O2, O3]))), 400,
      "^ballot.contributors names orgs without an update in round 2: Org3MSP$", stage=1),
    C("finalize-while-voting", "trainer2", "finalize_round", job_args("2"), 409,
      r"^round 2 is voting until \d+; waiting for Org2MSP$", stage=1),
    C("reveal-for-a-submitter", "trainer1", "reveal_seeds", job_args("2", j([O2])), 409,
      "^Org2MSP submitted; with payloads in the private collection only orgs that did not submit are left out$",
      transient=lambda w: {"seeds": j({O2: "ab" * 32}).encode()}, stage=1),
    C("register-after-voting", "trainer1", "register", job_args("3", "ef" * 32), 409,
      "^Org1MSP is already registered for round 3 of job @JOB$", stage=1),
]


def _text(a: Any) -> str:
    return a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)


def attempt(world: World, case: Case, args: list, transient: Optional[dict]) -> Any:
    """Send the case: the contract's :class:`Rejected`, another error, or None if it was accepted."""
    client = world.clients[case.who]
    if case.at is not None:
        return H.endorse_at(client, case.fn, args, 0 if case.at == 0 else int(time.time()) + case.at)
    contract = client.contract
    try:
        if case.fn in READS:
            contract.evaluate(case.fn, args=args, transient=transient)
        else:
            contract.submit(case.fn, args=args, transient=transient)
    except (EvaluateError, EndorseError) as err:
        return _rejection(case.fn, err)
    except CommitError as err:
        return err
    return None


def test_the_catalog_covers_every_write_and_is_large_enough() -> None:
    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)
    assert set(WRITES) <= {c.fn for c in CASES}
    assert {c.fn for c in CASES} - set(WRITES) <= READS
    stages = [c.stage for c in CASES]
    assert stages == sorted(stages)   # the world only moves forward


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_and_changes_nothing(world: World, case: Case) -> None:
    world.at(case.stage)
    args = case.args(world)
    transient = case.transient(world) if case.transient else None
    before = world.last or world_snapshot(world)
    got = attempt(world, case, args, transient)
    assert isinstance(got, Rejected), f"{case.id}: expected the contract's refusal, got {got!r:.600}"
    message = got.message
    expected = case.match.replace("@JOB", re.escape(world.id))
    assert got.status == case.status, f"{case.id}: status {got.status}: {message[:300]}"
    assert re.search(expected, message), f"{case.id}: {message[:400]!r} does not match {expected!r}"
    assert len(message) <= MAX_MESSAGE, f"{case.id}: {len(message)} characters"
    inputs = [_text(a) for a in args]
    for a in list(inputs):
        try:
            inputs.extend(texts_in(json.loads(a)))
        except (ValueError, RecursionError):
            pass
    assert not echoed(message, inputs), f"{case.id}: repeats more than 200 characters of an argument"
    world.last = after = world_snapshot(world)
    assert after == before, f"{case.id}: the world changed"


def test_world_snapshot_sees_accepted_writes(world: World) -> None:
    """The control (after the catalog): the same snapshot notices what the contract accepts -- a tag on
    version 1 and the job the create_job cases never managed to create."""
    world.at(CASES[-1].stage)
    before = world_snapshot(world)
    world.cons.synced(world.clients["admin1"].set_tag(world.id, 1, "hostile-catalog", "done"))
    world.cons.synced(world.clients["admin1"].create_job(world.spec()))
    after = world_snapshot(world)
    assert after["heights"] != before["heights"]
    assert after["versions"] != before["versions"] and after["new_job"] != before["new_job"]
    same = ("orgs", "policy", "stake_proposal", "status_proposal", "aliases", "new_alias")
    assert {k: after[k] for k in same} == {k: before[k] for k in same}
