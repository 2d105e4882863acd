"""A ledger with real history for audit tests: the real contract on MemoryStub, driven through whole
secure rounds, and a read-only FedFabricClient over it (evaluate transactions only, as an auditor)."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedfabric.artifacts import ArtifactStore, model_hash
from fedfabric.client import FedFabricClient, Rejected
from fedfabric.fl import fixedpoint
from fedfabric.fl.models import architecture_hash, build_model, model_to_vector
from fedfabric_cc import codec

from tests.chaincode import identities as ids
from tests.chaincode.harness import ORGS, SHAPE, T0, Ledger, TxFailed, init, job_spec
from tests.chaincode.rounds_helper import open_and_register, secure_payloads, submit

JOB = "job1"
ARCH, ARCH_KW = "logreg", {"in_dim": 3, "n_classes": 2}   # 2x3 weights + 2 biases = the harness SHAPE
SAMPLES = {"Org1MSP": 100, "Org2MSP": 300, "Org3MSP": 50}
T = ids.trainer


class RecordingLedger(Ledger):
    """Remembers the block of every committed write (one transaction per block on the stub)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: dict[str, int] = {}

    def call(self, who: bytes, fn: str, *args: Any, **kw: Any) -> Any:
        out = super().call(who, fn, *args, **kw)
        self.blocks.setdefault(self.stub.tx_id, self.stub.block)
        return out


class AuditClient(FedFabricClient):
    """FedFabricClient's read methods, each an evaluate transaction on the stub; writes refused."""

    def __init__(self, ledger: RecordingLedger, msp: str = "Org1MSP") -> None:
        super().__init__(contract=None)  # type: ignore[arg-type]
        self.ledger, self.who = ledger, ids.auditor(msp)
        self.calls: list[str] = []

    def _evaluate(self, fn: str, *args: Any) -> Any:
        self.calls.append(fn)
        before = self.ledger.snapshot()
        try:
            return self.ledger.call(self.who, fn, *args)
        except TxFailed as exc:
            raise Rejected(fn, exc.message, exc.status, "memstub") from None
        finally:
            assert self.ledger.snapshot()[:3] == before[:3], f"{fn} changed the ledger"

    def _submit(self, fn: str, *args: Any, **kw: Any) -> Any:
        raise AssertionError(f"audit code must not write ({fn})")

    def block_of_tx(self, tx_id: str) -> int | None:
        return self.ledger.blocks.get(tx_id)


@dataclass
class World:
    ledger: RecordingLedger
    client: AuditClient
    store: ArtifactStore
    vectors: dict[int, np.ndarray] = field(default_factory=dict)   # version -> parameters

    def put_version(self, version: int, **changes: Any) -> None:
        """Tamper with a version record directly in the stub's world state."""
        k = self.ledger.stub.create_composite_key("version", [JOB, f"{version:06d}"])
        rec = json.loads(self.ledger.stub.state[k])
        rec.update(changes)
        self.ledger.stub.state[k] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()


def _votes(led: Ledger, r: int, digest: str, reject: tuple[str, ...] = ()) -> None:
    for i, m in enumerate(ORGS):
        metrics = {"val_accuracy_milli": 700 + 100 * r + 10 * i, "val_loss_micro": 900_000 - 200_000 * r + 1000 * i,
                   "val_f1_milli": 650 + 100 * r, "val_samples": 40}
        if m in reject:
            led.call(T(m), "vote", JOB, r, {"approve": False, "metrics": metrics})
        else:
            led.call(T(m), "vote", JOB, r, {"approve": True, "model_hash": digest, "metrics": metrics})


def build_world(tmp: Path, failed_round: bool = True) -> World:
    """Two finalized secure rounds (version 1, 2) and, with ``failed_round``, a third that fails (Org1 alone)."""
    led = RecordingLedger()
    init(led)
    v0 = model_to_vector(build_model(ARCH, seed=0, **ARCH_KW))
    spec = job_spec(JOB, rounds=3 if failed_round else 2,
                    model={"arch_id": ARCH, "arch_hash": architecture_hash(ARCH, ARCH_KW), "initial_hash": model_hash(v0),
                           "shape_digest": codec.shape_digest(SHAPE), "num_params": int(v0.size)},
                    hyperparams={"arch": ARCH, "arch_kwargs": ARCH_KW, "lr": "0.05", "seed": 0})
    led.call(ids.admin(ORGS[0]), "create_job", spec)
    client = AuditClient(led)
    store = ArtifactStore(tmp / "store")
    store.put_model(v0)
    world = World(led, client, store, {0: v0})
    rng = np.random.default_rng(7)
    cur = v0
    for want in (1, 2):
        r, keys = open_and_register(led, JOB)
        led.call(T(ORGS[0]), "close_registration", JOB, r)
        deltas = {m: rng.normal(0, 0.05, v0.size) for m in ORGS}
        submit(led, JOB, r, secure_payloads(keys, deltas, SAMPLES, JOB, r, ORGS), SAMPLES)
        leader = led.call(T(ORGS[0]), "get_round", JOB, r)["leader"]
        led.call(T(leader), "aggregate", JOB, r)
        agg = led.call(T(ORGS[1]), "get_aggregate", JOB, r)
        delta = fixedpoint.decode(np.frombuffer(base64.b64decode(agg["data_b64"]), dtype="<u4").astype(np.uint32))
        cur = (cur.astype(np.float64) + delta).astype(np.float32)   # what every node computes as the candidate
        digest = store.put_model(cur)
        assert digest == model_hash(cur)
        _votes(led, r, digest, reject=("Org3MSP",) if want == 2 else ())
        v = led.call(T(ORGS[0]), "finalize_round", JOB, r)
        assert v["version"] == want and v["model_hash"] == digest
        world.vectors[want] = cur
    if failed_round:
        r, keys = open_and_register(led, JOB)
        led.call(T(ORGS[0]), "close_registration", JOB, r)
        submit(led, JOB, r, secure_payloads(keys, {"Org1MSP": np.zeros(v0.size)}, SAMPLES, JOB, r, ORGS), SAMPLES)
        rec = led.call(T(ORGS[1]), "aggregate", JOB, r, at=T0 + 301)
        assert rec["state"] == "failed"
    return world
