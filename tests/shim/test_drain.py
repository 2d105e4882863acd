"""Fake-peer tests of the handler state machine and of the server's graceful drain on stop."""
from __future__ import annotations

import threading
import time

import pytest
from fabric_protos.peer import chaincode_shim_pb2 as shim, proposal_response_pb2

from fabshim.server import ChaincodeServer
from fabshim.stub import Response

from .fakepeer import FakePeer
from tests.polling import wait_until

M = shim.ChaincodeMessage
SHUTDOWN = b"chaincode server shutting down"


class GateCC:
    """``hold`` blocks until ``gate`` is set; ``quick`` answers at once; counts invocations."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls: list[str] = []

    def init(self, stub):
        return Response(200)

    def invoke(self, stub):
        fn = stub.get_function_and_parameters()[0]
        self.calls.append(stub.tx_id)
        if fn == "hold":
            self.started.set()
            assert self.gate.wait(20)
            stub.put_state("held", b"done")  # still talks to the peer while draining
        return Response(200, "", fn.encode())




def _peer(server: ChaincodeServer, **kw) -> FakePeer:
    p = FakePeer(f"127.0.0.1:{server.port}", {}, **kw)
    assert wait_until(lambda: p.register is not None)
    return p


def _ready(p: FakePeer) -> None:
    """Wait until READY was processed (a KEEPALIVE sent after it comes back)."""
    p.out.put(M(type=M.KEEPALIVE))
    assert wait_until(lambda: M.KEEPALIVE in p.requests)


def _payload(m: M) -> bytes:
    return proposal_response_pb2.Response.FromString(m.payload).payload


@pytest.fixture
def cc() -> GateCC:
    return GateCC()


def _stop_in_thread(server: ChaincodeServer, grace: float) -> tuple[threading.Thread, list[float]]:
    took: list[float] = []

    def run() -> None:
        t0 = time.monotonic()
        server.stop(grace)
        took.append(time.monotonic() - t0)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, took


# ----------------------------------------------------------------------------- drain
def test_drain_answers_queued_and_new_transactions_and_finishes_running(cc: GateCC) -> None:
    s = ChaincodeServer(cc, "127.0.0.1:0", "drain:1", max_workers=1)  # one worker: the rest queue up
    s.start()
    try:
        _drain_scenario(s, cc)
    finally:
        cc.gate.set()
        s.stop(0)


def _drain_scenario(s: ChaincodeServer, cc: GateCC) -> None:
    p = _peer(s)
    p.send_tx("run", [b"hold"])
    assert cc.started.wait(5)
    queued = [f"q{i}" for i in range(5)]
    for t in queued:
        p.send_tx(t, [b"quick"])
    assert wait_until(lambda: all(h.busy() for h in s._streams.streams()))
    stopper, took = _stop_in_thread(s, grace=10.0)
    # the queued ones are answered at once, while the running one is still held
    got = p.wait(queued, timeout=3)
    assert all(m.type == M.ERROR and m.payload == SHUTDOWN for m in got.values()), got
    assert "run" not in p.done
    # a transaction arriving during the drain is refused the same way
    p.send_tx("late", [b"quick"])
    late = p.wait(["late"], timeout=3)["late"]
    assert (late.type, late.payload, late.channel_id) == (M.ERROR, SHUTDOWN, "ch")
    assert stopper.is_alive()  # still draining: the running transaction holds it
    cc.gate.set()
    done = p.wait(["run"], timeout=5)["run"]
    assert done.type == M.COMPLETED and _payload(done) == b"hold"
    assert p.state[("", "held")] == b"done"
    stopper.join(5)
    assert not stopper.is_alive() and took[0] < 5
    assert p.ended()  # then the stream was closed
    assert cc.calls == ["run"]  # no queued transaction ran after its ERROR
    p.close()


def test_drain_answers_transactions_still_running_at_the_deadline(cc: GateCC) -> None:
    s = ChaincodeServer(cc, "127.0.0.1:0", "drain:1")
    s.start()
    try:
        p = _peer(s)
        p.send_tx("stuck", [b"hold"])
        assert cc.started.wait(5)
        t0 = time.monotonic()
        s.stop(0.5)
        elapsed = time.monotonic() - t0
        m = p.wait(["stuck"], timeout=2)["stuck"]
        assert (m.type, m.payload) == (M.ERROR, SHUTDOWN)
        assert 0.4 < elapsed < 3.0, elapsed
        assert p.ended()
        cc.gate.set()  # the late result is dropped, not sent after the ERROR
        time.sleep(0.2)
        assert [r for r in p.requests if r in (M.COMPLETED, M.ERROR)] == [M.ERROR]
        p.close()
    finally:
        cc.gate.set()
        s.stop(0)


def test_drain_with_idle_streams_is_prompt(cc: GateCC) -> None:
    s = ChaincodeServer(cc, "127.0.0.1:0", "drain:1")
    s.start()
    peers = [_peer(s) for _ in range(3)]
    t0 = time.monotonic()
    s.stop(10.0)
    assert time.monotonic() - t0 < 2.0
    assert all(p.ended() for p in peers)
    for p in peers:
        p.close()


# ----------------------------------------------------------------------------- state machine
def test_transaction_before_registered_is_refused_and_ends_stream(cc: GateCC) -> None:
    s = ChaincodeServer(cc, "127.0.0.1:0", "sm:1")
    s.start()
    try:
        p = _peer(s, auto_ready=False)
        p.send_tx("early", [b"quick"])
        m = p.wait(["early"], timeout=3)["early"]
        assert m.type == M.ERROR and b"TRANSACTION" in m.payload and b"state: created" in m.payload
        assert p.ended()
        assert cc.calls == []
        p.close()
    finally:
        s.stop(0)


def test_init_before_ready_is_refused_and_ends_stream(cc: GateCC) -> None:
    s = ChaincodeServer(cc, "127.0.0.1:0", "sm:1")
    s.start()
    try:
        p = _peer(s, auto_ready=False)
        p.out.put(M(type=M.REGISTERED))
        p.send_tx("early", [b"quick"], mtype=M.INIT)
        m = p.wait(["early"], timeout=3)["early"]
        assert m.type == M.ERROR and b"INIT" in m.payload and b"state: established" in m.payload
        assert m.channel_id == "ch"
        assert p.ended()
        assert cc.calls == []
        p.close()
    finally:
        s.stop(0)


def test_registered_then_ready_then_transactions_work(cc: GateCC) -> None:
    s = ChaincodeServer(cc, "127.0.0.1:0", "sm:1")
    s.start()
    try:
        p = _peer(s, auto_ready=False)
        p.out.put(M(type=M.KEEPALIVE))  # echoed in any state
        p.out.put(M(type=M.REGISTERED))
        p.out.put(M(type=M.READY))
        _ready(p)
        p.send_tx("ok", [b"quick"])
        assert p.wait(["ok"])["ok"].type == M.COMPLETED
        p.close()
    finally:
        s.stop(0)


def test_unexpected_message_when_ready_is_refused(cc: GateCC) -> None:
    s = ChaincodeServer(cc, "127.0.0.1:0", "sm:1")
    s.start()
    try:
        p = _peer(s)
        _ready(p)
        p.out.put(M(type=M.REGISTERED, txid="again", channel_id="ch"))
        m = p.wait(["again"], timeout=3)["again"]
        assert m.type == M.ERROR and b"REGISTERED" in m.payload and b"state: ready" in m.payload
        assert p.ended()
        p.close()
    finally:
        s.stop(0)
