"""FedFabricClient over the real contract on the in-memory stub (fast node tests, no peer)."""
from __future__ import annotations

import threading
import time
from typing import Any, Mapping

from fedfabric.client import FedFabricClient, Rejected, Written

from tests.chaincode import identities as ids
from tests.chaincode.harness import Ledger, TxFailed

EVALUATE = {"get_org", "list_orgs", "org_history", "get_policy", "get_job", "list_jobs", "get_round", "list_rounds",
            "get_aggregate", "get_version", "list_versions", "list_aliases", "lineage", "compare_versions",
            "round_report", "org_report", "key_history"}


class MemClient(FedFabricClient):
    """One org's client; every call runs the contract on the shared :class:`Ledger` at wall-clock time."""

    def __init__(self, ledger: Ledger, msp: str, role: str = "trainer", lock: threading.Lock | None = None) -> None:
        super().__init__(contract=None)  # type: ignore[arg-type]
        self.ledger, self.msp = ledger, msp
        self.who = {"trainer": ids.trainer, "admin": ids.admin}[role](msp)
        self.lock = lock or threading.Lock()
        self.calls: list[str] = []

    def _call(self, fn: str, args: tuple, transient: Mapping[str, bytes] | None) -> Any:
        with self.lock:
            self.calls.append(fn)
            try:
                return self.ledger.call(self.who, fn, *args, transient=dict(transient) if transient else None,
                                        at=int(time.time()))
            except TxFailed as exc:
                raise Rejected(fn, exc.message, exc.status, f"memstub ({self.msp})") from None

    def _submit(self, fn: str, *args: Any, transient: Mapping[str, bytes] | None = None) -> Written:
        assert fn not in EVALUATE, fn
        return Written(self._call(fn, args, transient), "", 0)

    def _evaluate(self, fn: str, *args: Any) -> Any:
        assert fn in EVALUATE, fn
        return self._call(fn, args, None)
