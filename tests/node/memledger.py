"""FedFabricClient over the real contract on the in-memory stub, and a driver that runs OrgNodes on it
synchronously: each node is fed the contract's events (its own cursor into the stub's event list) and
steps, in turn, without threads or sleeps (fast, deterministic)."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterable, Mapping

from fedfabric.client import FedFabricClient, Rejected, Written

from tests.chaincode import identities as ids
from tests.chaincode.harness import Ledger, TxFailed

EVALUATE = {"get_org", "list_orgs", "org_history", "get_policy", "get_job", "list_jobs", "get_round", "list_rounds",
            "get_update", "get_revealed_seeds", "get_version", "list_versions", "list_aliases",
            "lineage", "compare_versions", "round_report", "org_report", "key_history"}


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
            resp = self.ledger.stub.run(self.ledger.cc, self.who, [fn, *map(_arg, args)], int(self.ledger.clock()),
                                        dict(transient) if transient else None)
        if resp.status != 200:
            raise Rejected(fn, resp.message, resp.status, f"memstub ({self.msp})")
        return resp.payload

    def _submit(self, fn: str, *args: Any, transient: Mapping[str, bytes] | None = None,
                everyone: bool = False) -> Written:
        assert fn not in EVALUATE, fn
        out = self._call(fn, args, transient)
        return Written(json.loads(out) if out else None, "", 0)

    def _evaluate_raw(self, fn: str, *args: Any) -> bytes:
        assert fn in EVALUATE, fn
        return self._call(fn, args, None)


def _arg(a: Any) -> str:
    return a if isinstance(a, str) else json.dumps(a, sort_keys=True, separators=(",", ":"))


def org_tls(orgs: Iterable[str]) -> dict[str, "NodeTls"]:
    """Per org a TLS CA and a node certificate for 127.0.0.1 it issued; each org's node identity knows every
    org's CA (what the network's per-org training-node material gives a real node)."""
    from fedfabric.node.exchange import NodeTls
    from tests.ledger.certs import tls_ca, tls_cert

    roots, leaves = {}, {}
    for msp in orgs:
        ca = tls_ca(f"tlsca.{msp.lower()}")
        node = tls_cert(f"fl-node.{msp.lower()}", ca, ["127.0.0.1"])
        roots[msp], leaves[msp] = ca.cert_pem, (node.cert_pem, node.key_pem)
    return {m: NodeTls(leaves[m][0], leaves[m][1], dict(roots)) for m in roots}


def exchange_for(tls: "NodeTls") -> "ExchangeSettings":
    """A node's exchange on a free loopback port."""
    from fedfabric.node.runtime import ExchangeSettings

    return ExchangeSettings("127.0.0.1:0", "127.0.0.1:0", tls)


def wall_clock_ledger() -> Ledger:
    """A memory ledger whose endorser clock is the wall clock (the nodes stamp proposals with it)."""
    return Ledger(clock=time.time)


class Feed:
    """A node's cursor into the stub's events."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.pos = ledger, 0

    def new(self) -> list[tuple[str, dict]]:
        evs = self.ledger.stub.events[self.pos:]
        self.pos += len(evs)
        return [(e.name, json.loads(e.payload)) for e in evs]


def drive(ledger: Ledger, nodes: Iterable, until=None, max_steps: int = 2000, pause: float = 0.0) -> None:
    """Sync each node, then feed events and step them in turn until every node's job completed (or
    ``until()`` is true); AssertionError after ``max_steps`` rounds of steps."""
    nodes = list(nodes)
    feeds = {id(n): Feed(ledger) for n in nodes}
    for n in nodes:
        n.sync()
    for _ in range(max_steps):
        for n in nodes:
            for name, body in feeds[id(n)].new():
                if body.get("job_id") == n.job_id:
                    n.on_event(name, body)
            n.safe_step()
        if (until is not None and until()) or all(n.status.value == "completed" for n in nodes):
            return
        if pause:
            time.sleep(pause)
    raise AssertionError("nodes did not finish the job")


class Nodes(list):
    """OrgNodes whose exchange servers are stopped when the ``with`` block ends."""

    def __enter__(self) -> "Nodes":
        return self

    def __exit__(self, *exc: object) -> None:
        for n in self:
            n.close()
