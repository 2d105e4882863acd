"""Fake-peer tests: unknown message types get an ERROR reply and the stream goes on; what the shim
sends back or logs repeats at most 200 characters of its input, so huge function names, ids and keys
produce the short error (never a message too large for the client's gRPC trailers)."""
from __future__ import annotations

import logging
import re

import pytest
from fabric_protos.peer import chaincode_shim_pb2 as shim, proposal_response_pb2

from fabshim.contract import Chaincode, ChaincodeError, Context, Contract, transaction
from fabshim.echo import ECHO_LIMIT, MAX_ERROR_TEXT, clip
from fabshim.server import ChaincodeServer
from fabshim.stub import Response

from .fakepeer import FakePeer
from tests.polling import wait_until

M = shim.ChaincodeMessage
HUGE = 16 * 1024
JOB_ID_SIZED = 6 * 1024


class Echoing(Contract):
    name = "echo"

    @transaction
    def get(self, ctx: Context, key: str) -> bytes:
        return ctx.stub.get_state(key) or b""

    @transaction
    def scan(self, ctx: Context, start: str) -> list:
        return [k for k, _ in ctx.stub.get_state_by_range(start, "")]

    @transaction
    def fail(self, ctx: Context, message: str) -> None:
        raise ChaincodeError(message)


class RawEcho:
    """Without the router: exceptions and messages reach the handler as they are."""

    def init(self, stub):
        return Response(200)

    def invoke(self, stub):
        fn, params = stub.get_function_and_parameters()
        if fn == "raise":
            raise ValueError(params[0])
        if fn == "message":
            return Response(500, params[0])
        if fn == "scan":
            return Response(200, "", b",".join(k.encode() for k, _ in stub.get_state_by_range(params[0], "")))
        if fn == "get":
            return Response(200, "", stub.get_state(params[0]) or b"")
        return Response(200)


@pytest.fixture(params=["router", "raw"])
def served(request):
    cc = Chaincode([Echoing()]) if request.param == "router" else RawEcho()
    s = ChaincodeServer(cc, "127.0.0.1:0", "echo:1")
    s.start()
    yield request.param, s
    s.stop(0)


def _peer(s: ChaincodeServer, **kw) -> FakePeer:
    p = FakePeer(f"127.0.0.1:{s.port}", {}, **kw)
    assert wait_until(lambda: p.register is not None)
    return p


def _message(m: M) -> str:
    """The text the client would see: the Response message (COMPLETED) or the ERROR payload."""
    if m.type == M.COMPLETED:
        return proposal_response_pb2.Response.FromString(m.payload).message
    return m.payload.decode("utf-8", "replace")


def _longest_run(text: str, ch: str = "x") -> int:
    return max((len(r) for r in re.findall(re.escape(ch) + "+", text)), default=0)


@pytest.mark.parametrize("state", ["created", "ready"])
def test_unknown_message_type_gets_error_and_the_stream_goes_on(state: str) -> None:
    s = ChaincodeServer(RawEcho(), "127.0.0.1:0", "echo:1")
    s.start()
    try:
        p = _peer(s, auto_ready=False)
        if state == "ready":
            p.out.put(M(type=M.REGISTERED))
            p.out.put(M(type=M.READY))
        p.out.put(M(type=999, txid="odd-one", channel_id="ch", payload=b"?"))
        m = p.wait(["odd-one"], timeout=3)["odd-one"]
        assert m.type == M.ERROR and m.channel_id == "ch"
        assert m.payload == b"[odd-one] chaincode cannot handle message of unknown type 999"
        assert not p.ended(0.3)
        if state == "created":
            p.out.put(M(type=M.REGISTERED))
            p.out.put(M(type=M.READY))
        p.send_tx("after", [b"noop"])
        assert p.wait(["after"], timeout=3)["after"].type == M.COMPLETED
        p.close()
    finally:
        s.stop(0)


@pytest.mark.parametrize("size", [JOB_ID_SIZED, HUGE])
def test_huge_function_name_gets_the_short_error(size: int) -> None:
    s = ChaincodeServer(Chaincode([Echoing()]), "127.0.0.1:0", "echo:1")
    s.start()
    try:
        p = _peer(s)
        p.send_tx("f", [b"n" * size])
        m = p.wait(["f"], timeout=3)["f"]
        resp = proposal_response_pb2.Response.FromString(m.payload)
        assert m.type == M.COMPLETED and resp.status == 500
        assert "not found" in resp.message and len(resp.message) < 300
        p.send_tx("g", [b"echo:" + b"n" * size, b"k"])
        assert len(_message(p.wait(["g"], timeout=3)["g"])) < 300
        p.close()
    finally:
        s.stop(0)


def test_error_texts_echo_at_most_200_characters(served, caplog) -> None:
    kind, s = served
    caplog.set_level(logging.DEBUG, logger="fabshim")
    p = _peer(s, fail_keys=("bad",))
    big = "x" * HUGE
    cases = {
        "scan": [b"scan", ("\x00" + big).encode()],   # the shim's own key check names the key
        "fail": [b"fail" if kind == "router" else b"message", big.encode()],
    }
    if kind == "raw":
        cases["raise"] = [b"raise", big.encode()]
    for txid, args in cases.items():
        p.send_tx(txid, args)
    got = p.wait(list(cases), timeout=5)
    for txid, m in got.items():
        text = _message(m)
        assert _longest_run(text) <= MAX_ERROR_TEXT, (txid, len(text))
        if txid != "fail":  # a contract's own message is its business, cut only to MAX_ERROR_TEXT
            assert _longest_run(text) <= ECHO_LIMIT, (txid, len(text))
        assert len(text) < MAX_ERROR_TEXT + 100
    # the shim's own lines, DEBUG tracebacks included (the router, fabshim.contract, logs its own)
    ours = [r for r in caplog.records if r.name != "fabshim.contract"]
    assert ours and all(not r.exc_info for r in ours)
    assert max(_longest_run(r.getMessage()) for r in ours) <= ECHO_LIMIT
    p.close()


def test_duplicate_of_a_huge_transaction_id_is_refused_briefly() -> None:
    class Slow(RawEcho):
        def invoke(self, stub):
            import time
            time.sleep(0.5)
            return Response(200)

    s = ChaincodeServer(Slow(), "127.0.0.1:0", "echo:1")
    s.start()
    try:
        p = _peer(s)
        txid = "t" * HUGE
        p.send_tx(txid, [b"slow"])
        p.send_tx(txid, [b"slow"])
        with p.cv:
            assert p.cv.wait_for(lambda: txid in p.done, 3)
            first = p.done.pop(txid)
        assert first.type == M.ERROR and first.payload.startswith(b"duplicate transaction ID ttt")
        assert len(first.payload) < 300
        assert p.wait([txid])[txid].type == M.COMPLETED
        p.close()
    finally:
        s.stop(0)


def test_peer_error_text_is_clipped_in_what_the_chaincode_sees() -> None:
    seen: list[str] = []

    class Catch(RawEcho):
        def invoke(self, stub):
            try:
                stub.get_state("k")
            except Exception as exc:
                seen.append(str(exc))
            return Response(200)

    s = ChaincodeServer(Catch(), "127.0.0.1:0", "echo:1")
    s.start()
    try:
        p = _peer(s)
        p.state = {}
        p.fail_keys = ("k",)
        p._reply_orig = p._reply
        p._reply = lambda req, payload=b"", t=M.RESPONSE: p._reply_orig(
            req, b"y" * HUGE if t == M.ERROR else payload, t)
        p.send_tx("c", [b"catch"])
        assert p.wait(["c"])["c"].type == M.COMPLETED
        assert len(seen) == 1 and _longest_run(seen[0], "y") == ECHO_LIMIT
        p.close()
    finally:
        s.stop(0)


def test_clip() -> None:
    assert clip("short") == "short"
    assert clip("a" * 200) == "a" * 200
    assert clip("a" * 201) == "a" * 200 + "… (201 characters)"
    assert clip("abcdef", 3) == "abc… (6 characters)"
