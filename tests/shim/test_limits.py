"""Fake-peer tests of the chaincode server's bounds: whatever one stream does, the others are served.

In-flight transactions per stream (excess answered with ERROR at once), the share of workers one
stream may hold, the time limit on a peer's answer to a stub request, the cap on open streams (the
unregistered, then the least recently active idle ones dropped first), a stream that stops reading,
and a new stream's REGISTER with 300 idle streams and a hostile one open.
"""
from __future__ import annotations

import threading
import time

import pytest
from fabric_protos.peer import chaincode_shim_pb2 as shim, proposal_response_pb2

from fabshim.errors import PeerTimeout
from fabshim.limits import StreamLimits
from fabshim.server import ChaincodeServer
from fabshim.stub import Response

from .fakepeer import FakePeer, HostilePeer, IdleStreams
from tests.polling import wait_until

M = shim.ChaincodeMessage
INFLIGHT = b"too many transactions in flight on this stream"


class LimitCC:
    """``get k`` reads a key; ``hold`` waits for ``gate``; ``retry k`` reads again after a timeout."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.holding = 0
        self.after_timeout: list[str] = []
        self.lock = threading.Lock()

    def init(self, stub):
        return Response(200)

    def invoke(self, stub):
        fn, params = stub.get_function_and_parameters()
        if fn == "get":
            return Response(200, "", stub.get_state(params[0]) or b"")
        if fn == "hold":
            with self.lock:
                self.holding += 1
            assert self.gate.wait(20)
            return Response(200, "", b"held")
        if fn == "retry":
            try:
                stub.get_state(params[0])
            except PeerTimeout:
                pass
            try:  # the transaction was already answered with ERROR: no new request reaches the peer
                stub.get_state(params[0])
            except Exception as exc:
                self.after_timeout.append(type(exc).__name__)
            return Response(200, "", b"late result")
        return Response(200, "", b"quick")


@pytest.fixture
def cc() -> LimitCC:
    c = LimitCC()
    yield c
    c.gate.set()


def _serve(cc: LimitCC, **kw) -> ChaincodeServer:
    s = ChaincodeServer(cc, "127.0.0.1:0", "limits:1", **kw)
    s.start()
    return s


def _ready(p: FakePeer) -> FakePeer:
    """Wait for REGISTER, then until READY was processed (a KEEPALIVE sent after it comes back)."""
    assert wait_until(lambda: p.register is not None)
    p.out.put(M(type=M.KEEPALIVE))
    assert wait_until(lambda: M.KEEPALIVE in p.requests)
    return p


def _payload(m: M) -> bytes:
    return proposal_response_pb2.Response.FromString(m.payload).payload


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_inflight"):
        StreamLimits(max_inflight=0)
    with pytest.raises(ValueError, match="request_timeout"):
        StreamLimits(request_timeout=0)
    with pytest.raises(ValueError, match="max_streams"):
        ChaincodeServer(LimitCC(), "127.0.0.1:0", "x", max_streams=0)
    s = ChaincodeServer(LimitCC(), "127.0.0.1:0", "x", max_workers=8)
    assert s.limits == StreamLimits(max_running=2)  # defaults: a quarter of the workers per stream


def test_excess_in_flight_is_answered_with_error_at_once(cc: LimitCC) -> None:
    s = _serve(cc, max_inflight_per_stream=4, max_running_per_stream=2)
    try:
        p = _ready(FakePeer(f"127.0.0.1:{s.port}", {}))
        ids = [f"h{i}" for i in range(10)]
        t0 = time.monotonic()
        for t in ids:
            p.send_tx(t, [b"hold"])
        refused = p.wait(ids[4:], timeout=3)
        assert time.monotonic() - t0 < 2.0
        assert all(m.type == M.ERROR and m.payload.startswith(INFLIGHT) for m in refused.values())
        assert not any(t in p.done for t in ids[:4])  # the first four are held, not refused
        assert wait_until(lambda: cc.holding == 2) and cc.holding == 2  # two of them on workers
        cc.gate.set()
        held = p.wait(ids[:4])
        assert all(m.type == M.COMPLETED and _payload(m) == b"held" for m in held.values())
        # room again: new transactions are accepted
        p.send_tx("after", [b"quick"])
        assert p.wait(["after"])["after"].type == M.COMPLETED
        p.close()
    finally:
        s.stop(0)


def test_one_stream_holds_at_most_its_share_of_the_workers(cc: LimitCC) -> None:
    s = _serve(cc, max_workers=4, max_running_per_stream=2, request_timeout=30)
    try:
        hostile = _ready(HostilePeer(f"127.0.0.1:{s.port}"))
        for i in range(20):
            hostile.send_tx(f"x{i}", [b"get", b"k"])
        assert wait_until(lambda: len(hostile.unanswered) == 2)
        time.sleep(0.2)
        assert len(hostile.unanswered) == 2  # the other 18 wait their turn without a worker
        good = _ready(FakePeer(f"127.0.0.1:{s.port}", {("", "k"): b"v"}))
        t0 = time.monotonic()
        ids = [f"g{i}" for i in range(10)]
        for t in ids:
            good.send_tx(t, [b"get", b"k"])
        got = good.wait(ids, timeout=5)
        assert time.monotonic() - t0 < 2.0
        assert all(m.type == M.COMPLETED and _payload(m) == b"v" for m in got.values())
        hostile.close()
        good.close()
    finally:
        s.stop(0)


def test_unanswered_request_times_out_frees_the_worker_and_answers_error(cc: LimitCC) -> None:
    s = _serve(cc, max_workers=1, request_timeout=0.5)
    try:
        hostile = _ready(HostilePeer(f"127.0.0.1:{s.port}"))
        t0 = time.monotonic()
        hostile.send_tx("t1", [b"get", b"k"])
        m = hostile.wait(["t1"], timeout=5)["t1"]
        took = time.monotonic() - t0
        assert m.type == M.ERROR and m.payload == b"no answer from the peer to GET_STATE within 0.5s"
        assert 0.4 < took < 2.0, took
        # the single worker is free again: another stream's transaction runs
        good = _ready(FakePeer(f"127.0.0.1:{s.port}", {("", "k"): b"v"}))
        good.send_tx("g", [b"get", b"k"])
        assert _payload(good.wait(["g"], timeout=3)["g"]) == b"v"
        # a late answer to the timed-out request is dropped; the stream keeps working
        req = hostile.unanswered[0]
        hostile.out.put(M(type=M.RESPONSE, payload=b"late", txid=req.txid, channel_id=req.channel_id))
        hostile.send_tx("q", [b"quick"])
        assert hostile.wait(["q"], timeout=3)["q"].type == M.COMPLETED
        hostile.close()
        good.close()
    finally:
        s.stop(0)


def test_transaction_that_catches_the_timeout_cannot_ask_again_or_answer_twice(cc: LimitCC) -> None:
    s = _serve(cc, request_timeout=0.3)
    try:
        hostile = _ready(HostilePeer(f"127.0.0.1:{s.port}"))
        hostile.send_tx("r", [b"retry", b"k"])
        m = hostile.wait(["r"], timeout=5)["r"]
        assert m.type == M.ERROR and b"no answer from the peer" in m.payload
        assert wait_until(lambda: cc.after_timeout == ["ShimError"])
        time.sleep(0.2)
        assert len(hostile.unanswered) == 1  # the second read never reached the peer
        assert [r for r in hostile.requests if r in (M.COMPLETED, M.ERROR)] == [M.ERROR]  # late result dropped
        hostile.close()
    finally:
        s.stop(0)


def test_stream_cap_drops_unregistered_then_least_recently_active_idle(cc: LimitCC) -> None:
    s = _serve(cc, max_streams=4)
    target = f"127.0.0.1:{s.port}"
    try:
        oldest_idle = _ready(FakePeer(target, {}))
        busy = _ready(FakePeer(target, {}))
        busy.send_tx("b", [b"hold"])
        assert wait_until(lambda: cc.holding == 1)
        unregistered = FakePeer(target, {}, auto_ready=False)
        assert wait_until(lambda: unregistered.register is not None)
        newer_idle = _ready(FakePeer(target, {}))
        assert wait_until(lambda: s.stream_count == 4)

        first = _ready(FakePeer(target, {}))      # 5th: the one that never finished its handshake goes
        assert unregistered.ended(3) and not oldest_idle.ended(0.2)
        second = _ready(FakePeer(target, {}))     # 6th: the least recently active idle one goes
        assert oldest_idle.ended(3) and not newer_idle.ended(0.2)
        third = _ready(FakePeer(target, {}))      # 7th: the next idle one, not the busy one
        assert newer_idle.ended(3) and not busy.ended(0.2)
        assert s.stream_count == 4
        cc.gate.set()
        assert busy.wait(["b"])["b"].type == M.COMPLETED
        for p in (first, second, third):
            p.send_tx("q", [b"quick"])
            assert p.wait(["q"])["q"].type == M.COMPLETED
        for p in (oldest_idle, busy, unregistered, newer_idle, first, second, third):
            p.close()
    finally:
        s.stop(0)


def test_stream_that_stops_reading_is_dropped(cc: LimitCC, caplog) -> None:
    s = _serve(cc, max_backlog=4 << 20)
    try:
        # a peer that sends large KEEPALIVEs (each echoed back) and reads nothing
        quiet = FakePeer(f"127.0.0.1:{s.port}", {},
                         options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1 << 16)])
        assert wait_until(lambda: quiet.register is not None)
        quiet.call.cancel = lambda: None  # keep the client side open
        blocker = threading.Event()
        quiet._on = lambda m: blocker.wait()  # the reader stops reading after the first message
        for _ in range(400):
            quiet.out.put(M(type=M.KEEPALIVE, payload=b"k" * (256 << 10)))
        assert wait_until(lambda: s.stream_count == 0, timeout=10)
        assert any(f"the peer left more than {4 << 20} bytes unread" in r.getMessage() for r in caplog.records)
        blocker.set()
        ok = _ready(FakePeer(f"127.0.0.1:{s.port}", {}))
        ok.send_tx("q", [b"quick"])
        assert ok.wait(["q"])["q"].type == M.COMPLETED
        quiet.close()
        ok.close()
    finally:
        s.stop(0)


def test_new_stream_registers_promptly_with_300_idle_streams_and_a_hostile_one(cc: LimitCC) -> None:
    s = _serve(cc)  # the defaults
    target = f"127.0.0.1:{s.port}"
    idle = IdleStreams(target, 300)
    try:
        hostile = _ready(HostilePeer(target))
        for i in range(300):
            hostile.send_tx(f"x{i}", [b"get", b"k"])
        refused = hostile.wait([f"x{i}" for i in range(256, 300)], timeout=10)
        assert all(m.type == M.ERROR and m.payload.startswith(INFLIGHT) for m in refused.values())
        assert wait_until(lambda: s.stream_count <= 64, timeout=10)
        t0 = time.monotonic()
        fresh = FakePeer(target, {("", "k"): b"v"})
        assert wait_until(lambda: fresh.register is not None, timeout=3)
        registered = time.monotonic() - t0
        fresh.send_tx("t", [b"get", b"k"])
        m = fresh.wait(["t"], timeout=3)["t"]
        answered = time.monotonic() - t0
        assert m.type == M.COMPLETED and _payload(m) == b"v"
        assert registered < 1.0 and answered < 2.0, (registered, answered)
        assert not hostile.ended(0.1)  # busy: the idle ones were dropped first
        assert s.stream_count <= 64
        hostile.close()
        fresh.close()
    finally:
        idle.close()
        s.stop(0)
