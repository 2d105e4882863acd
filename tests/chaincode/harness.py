"""Drive the contract through the shim's router on a MemoryStub, like a peer would."""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Optional

import numpy as np
import pytest

from fabshim.contract import Chaincode
from fabshim.memstub import MemoryStub
from fedfabric_cc.clock import SkewGate
from fedfabric_cc.contract import FedFabricContract
from fedfabric_protocol import codec

from . import identities as ids

ORGS = ["Org1MSP", "Org2MSP", "Org3MSP"]
T0 = 1_800_000_000


class TxFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


def _arg(a: Any) -> str:
    if isinstance(a, str):
        return a
    if isinstance(a, bool):
        return "true" if a else "false"
    if isinstance(a, int):
        return str(a)
    return json.dumps(a, sort_keys=True, separators=(",", ":"))


class Ledger:
    """A MemoryStub-backed ledger whose endorser clock is ``t`` (tx-time seconds); a call's ``at`` is the
    proposal timestamp the client chose (default: the endorser's time)."""

    def __init__(self, clock=None) -> None:
        self.stub = MemoryStub()
        self.t = T0
        self.clock = clock or (lambda: self.t)
        self.cc = Chaincode([FedFabricContract(SkewGate(30, lambda: self.clock()))])

    def call(self, who: bytes, fn: str, *args: Any, transient: Optional[dict] = None, at: Optional[int] = None) -> Any:
        when = at if at is not None else int(self.clock())
        resp = self.stub.run(self.cc, who, [fn, *map(_arg, args)], when, transient)
        if resp.status != 200:
            raise TxFailed(resp.status, resp.message)
        if not resp.payload:
            return None
        try:
            return json.loads(resp.payload)
        except ValueError:
            return resp.payload   # raw bytes (payload reads)

    def snapshot(self) -> tuple:
        s = self.stub
        return (dict(s.state), copy.deepcopy(s.private), dict(s.vparams), len(s.events),
                {k: len(v) for k, v in s.history.items()})

    def reject(self, who: bytes, fn: str, *args: Any, match: str, status: Optional[int] = None, **kw) -> TxFailed:
        """The call must fail with ``match`` in its message and change nothing."""
        before = self.snapshot()
        with pytest.raises(TxFailed) as ei:
            self.call(who, fn, *args, **kw)
        assert not ei.value.message.startswith("internal error"), ei.value.message
        assert match in ei.value.message, ei.value.message
        if status is not None:
            assert ei.value.status == status, ei.value
        assert self.snapshot() == before, "a rejected transaction changed the ledger"
        return ei.value

    @property
    def last_event(self):
        return self.stub.events[-1]

    def events_named(self, name: str) -> list[dict]:
        return [e.json() for e in self.stub.events if e.name == name]


def init(ledger: Ledger, stakes=(100, 100, 100), balances=(0, 0, 0), quorum: str = "2/3", orgs=ORGS) -> Any:
    recs = [{"msp_id": m, "name": m.lower(), "stake": s, "balance": b} for m, s, b in zip(orgs, stakes, balances)]
    return ledger.call(ids.admin(orgs[0]), "init_consortium", recs, quorum)


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


SHAPE = [[2, 3], [2]]
NUM_PARAMS = 8


def job_spec(job_id: str = "job1", participants=ORGS, **over: Any) -> dict:
    spec = {"job_id": job_id,
            "model": {"arch_id": "mlp-2x3", "arch_hash": h("arch"), "initial_hash": h("v0"),
                      "shape_digest": codec.shape_digest(SHAPE), "num_params": NUM_PARAMS},
            "hyperparams": {"dataset": "breast_cancer", "arch": "logreg", "lr": "0.01", "epochs": 1,
                            "batch_size": 32, "shards": list(participants)},
            "rounds": 3, "privacy": "secure", "aggregation": {"rule": "fedavg"}, "quorum": "2/3",
            "min_participants": 2, "participants": list(participants),
            "windows": {"registration_s": 60, "submission_s": 300, "approval_s": 120},
            "incentives": {"reward_per_round": 1000, "slash_absent": 10, "slash_anomalous": 20}}
    spec.update(over)
    return spec


def meta_for(payload: bytes, samples: int = 100, **over: Any) -> dict:
    m = {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload), "shape_digest": codec.shape_digest(SHAPE),
         "sample_count": samples, "dtype": "uint32le",
         "training": {"start": T0, "end": T0 + 50, "epochs": 2, "iterations": 20,
                      "loss_per_epoch": [693147, 512000], "data_fingerprint": h("data")},
         "metrics": {"train_acc_milli": 870}}
    m.update(over)
    return m


def words(values) -> bytes:
    return codec.pack(np.asarray(values, dtype=np.int64))
