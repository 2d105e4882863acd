"""A ledger with real v2 history for the audit tests: three OrgNodes run job ``job1`` on the real contract
over the in-memory stub (tests.node.memledger), and a read-only auditor client reads it back.

The job's three secure rounds, as the nodes play them:

1. everyone trains, votes and the round finalizes into version 1;
2. Org3MSP's node is down: after the submission window Org1 and Org2 reveal their pairwise seeds for
   it, the round finalizes into version 2 without it (``outcome.left_out``) and Org3 is slashed;
3. only Org1MSP's node runs (Org3 sent no key for round 3 in a ballot, Org2 is down): after the
   submission window Org1 closes the round as failed (the job needs two updates), slashing Org2.

The rounds take some seconds of wall-clock windows, so :func:`build_world` plays them once per test
process and hands every caller its own copy (ledger and store) to read or tamper with.
"""
from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedfabric.artifacts import ArtifactStore, model_hash
from fedfabric.node.bootstrap import create_job
from fedfabric.node.jobfile import parse_job
from fedfabric.node.runtime import NodeOptions, OrgNode

from tests.chaincode import identities as ids
from tests.chaincode.harness import ORGS, Ledger, init
from tests.node.memledger import MemClient, drive, wall_clock_ledger

JOB = "job1"
ARCH, ARCH_KW = "logreg", {"in_dim": 30, "n_classes": 2}   # breast cancer: 30 features, 2 classes
MSP_OF = {f"org{i}": f"Org{i}MSP" for i in (1, 2, 3)}
SUBMISSION_S = 3   # rounds 2 and 3 wait it out to leave an org behind
JOB_DOC = {"job_id": JOB, "dataset": "breast_cancer", "model": {"arch": ARCH}, "rounds": 3,
           "partition": {"kind": "dirichlet", "alpha": 0.5}, "training": {"epochs": 1, "lr": 0.05},
           "privacy": "secure", "quorum": "2/3", "min_participants": 2, "participants": ["org1", "org2", "org3"],
           "windows": {"registration_s": 60, "submission_s": SUBMISSION_S, "reveal_s": 60, "approval_s": 60},
           "incentives": {"reward_per_round": 1000, "slash_absent": 10, "slash_anomalous": 20}}


class AuditClient(MemClient):
    """An org's Auditor on the memory ledger: reads only (a write, or a read that changes the ledger, fails
    the test), and knows the block of every committed write (one write transaction per block)."""

    def __init__(self, ledger: Ledger, msp: str = "Org1MSP") -> None:
        super().__init__(ledger, msp)
        self.who = ids.auditor(msp)

    def _evaluate_raw(self, fn: str, *args: Any) -> bytes:
        before = self.ledger.snapshot()
        try:
            return super()._evaluate_raw(fn, *args)
        finally:
            assert self.ledger.snapshot()[:3] == before[:3], f"{fn} changed the ledger"

    def _submit(self, fn: str, *args: Any, **kw: Any) -> Any:
        raise AssertionError(f"audit code must not write ({fn})")

    def block_of_tx(self, tx_id: str) -> int | None:
        writes = (rw.tx_id for rw in self.ledger.stub.rw_log if rw.writes)
        return next((n for n, t in enumerate(writes, start=1) if t == tx_id), None)


@dataclass
class World:
    ledger: Ledger
    client: AuditClient
    store: ArtifactStore                                           # Org1's node store: every version
    vectors: dict[int, np.ndarray] = field(default_factory=dict)   # version -> parameters

    def put_version(self, version: int, **changes: Any) -> None:
        """Tamper with a version record directly in the stub's world state."""
        k = self.ledger.stub.create_composite_key("version", [JOB, f"{version:06d}"])
        rec = json.loads(self.ledger.stub.state[k])
        rec.update(changes)
        self.ledger.stub.state[k] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()

    def clone(self, tmp: Path) -> "World":
        """An independent copy (ledger and store) to tamper with."""
        led = wall_clock_ledger()
        led.stub = copy.deepcopy(self.ledger.stub)
        store = ArtifactStore(shutil.copytree(self.store.root, tmp / "store", dirs_exist_ok=True))
        return World(led, AuditClient(led), store, dict(self.vectors))


def _report(led: Ledger, r: int) -> dict:
    return AuditClient(led).round_report(JOB, r)


def _voted(led: Ledger, r: int, msps: list[str]) -> bool:
    parts = _report(led, r)["participants"]
    return all(parts[m]["vote"] is not None for m in msps)


def _submitted(led: Ledger, r: int, msps: list[str]) -> bool:
    parts = _report(led, r)["participants"]
    return all(parts[m]["update"] is not None for m in msps)


_PRISTINE: list[World] = []


def build_world(tmp: Path) -> World:
    """Job ``job1``: rounds 1 and 2 finalized (versions 1, 2; Org3 left out of round 2), round 3 failed.

    A copy of the one world this process played (:func:`play_job`), stored under ``tmp``."""
    if not _PRISTINE:
        _PRISTINE.append(play_job(Path(tmp) / "pristine"))
    return _PRISTINE[0].clone(Path(tmp))


def play_job(tmp: Path) -> World:
    """Three nodes play job ``job1`` on a fresh memory ledger (working directories under ``tmp``)."""
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    create_job(admin, parse_job(JOB_DOC), MSP_OF)
    opts = NodeOptions(grace=0.0, tick=0.01)
    nodes = [OrgNode(MemClient(led, m), m, JOB, tmp / m, opts) for m in ORGS]
    nodes[0].sync()   # a throwaway local training warms torch up, so round 1's fit in its submission window
    nodes[0].recipe.train(nodes[0].book.initial, 0)
    drive(led, nodes, until=lambda: _submitted(led, 1, ORGS))
    drive(led, nodes[2:], until=lambda: _voted(led, 1, ORGS[2:]))   # Org3's last act: its round-1 ballot
    # round 2 without Org3: the key in its round-1 ballot made it a participant
    drive(led, nodes[:2], until=lambda: _voted(led, 2, ORGS[:2]), pause=0.05)
    # round 3: only Org1 runs; one update cannot make a version: it closes the round once the window ends
    org1 = nodes[0]
    drive(led, [org1], pause=0.05)
    got = [(rec.state.value, rec.outcome["contributors"]) for rec in (admin.get_round(JOB, r) for r in (1, 2, 3))]
    assert got == [("finalized", ORGS), ("finalized", ORGS[:2]), ("failed", [])], \
        f"the nodes did not play the rounds as planned (a node slower than the {SUBMISSION_S} s window?): {got}"
    store = org1.store
    store.put_model(org1.book.initial)
    vectors = {v["version"]: store.get_model(v["model_hash"]) for v in admin.list_versions(JOB)}
    assert all(model_hash(vec) == admin.get_version(JOB, n)["model_hash"] for n, vec in vectors.items())
    return World(led, AuditClient(led), store, vectors)
