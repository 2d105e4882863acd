"""Fake-peer tests of the server + handler + stub protocol."""
from __future__ import annotations

import time

import pytest
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2 as shim, proposal_response_pb2

from fabshim.server import ChaincodeServer
from fabshim.stub import Response

from .fakepeer import FakePeer

M = shim.ChaincodeMessage


class RawCC:
    def init(self, stub):
        return Response(200, "", b"init")

    def invoke(self, stub):
        fn, p = stub.get_function_and_parameters()
        if fn == "put":
            stub.put_state(p[0], p[1].encode())
            v = stub.get_state(p[0])
            return Response(200, "", v + stub.tx_id.encode())
        if fn == "get":
            return Response(200, "", stub.get_state(p[0]) or b"<none>")
        if fn == "raise":
            raise RuntimeError("kaboom")
        if fn == "event":
            stub.set_event("evt", b"payload")
            return Response(200)
        if fn == "big":
            return Response(200, "", stub.get_args()[1] * 1)
        if fn == "range":
            with stub.get_state_by_range(p[0], p[1]) as it:
                keys = [k for k, _ in it]
            return Response(200, "", ",".join(keys).encode())
        if fn == "slow":
            time.sleep(float(p[0]))
            return Response(200)
        if fn == "sbe":
            stub.set_state_validation_parameter("k", b"policy")
            return Response(200, "", stub.get_state_validation_parameter("k"))
        return Response(500, "unknown")


@pytest.fixture
def server():
    s = ChaincodeServer(RawCC(), "127.0.0.1:0", "mycc:abc")
    s.start()
    yield s
    s.stop(0)


def _peer(server, **kw):
    p = FakePeer(f"127.0.0.1:{server.port}", kw.pop("state", {}), **kw)
    deadline = time.time() + 5
    while p.register is None and time.time() < deadline:
        time.sleep(0.01)
    return p


def _resp(m: M) -> proposal_response_pb2.Response:
    return proposal_response_pb2.Response.FromString(m.payload)


def test_register_first(server):
    p = _peer(server)
    assert p.register is not None
    assert chaincode_pb2.ChaincodeID.FromString(p.register.payload).name == "mycc:abc"
    p.send_tx("i1", [b"x"], mtype=M.INIT)
    assert _resp(p.wait(["i1"])["i1"]).payload == b"init"
    p.close()


def test_200_concurrent_one_stream(server):
    p = _peer(server)
    ids = [f"tx{i}" for i in range(200)]
    for i, t in enumerate(ids):
        p.send_tx(t, [b"put", f"k{i}".encode(), f"v{i}".encode()])
    got = p.wait(ids)
    for i, t in enumerate(ids):
        assert got[t].type == M.COMPLETED
        assert _resp(got[t]).payload == f"v{i}{t}".encode()
    p.close()


def test_200_across_three_streams(server):
    peers = [_peer(server) for _ in range(3)]
    for i in range(200):
        peers[i % 3].send_tx(f"t{i}", [b"put", f"k{i}".encode(), f"v{i}".encode()])
    for j, p in enumerate(peers):
        ids = [f"t{i}" for i in range(200) if i % 3 == j]
        got = p.wait(ids)
        for t in ids:
            assert _resp(got[t]).payload == f"v{t[1:]}{t}".encode()
        p.close()


def test_exception_gives_error(server):
    p = _peer(server)
    p.send_tx("e1", [b"raise"])
    m = p.wait(["e1"])["e1"]
    assert m.type == M.ERROR and b"kaboom" in m.payload
    p.close()


def test_peer_error_surfaces(server):
    p = _peer(server, fail_keys=("bad",))
    p.send_tx("p1", [b"get", b"bad"])
    m = p.wait(["p1"])["p1"]
    assert m.type == M.ERROR and b"boom from peer" in m.payload
    p.close()


def test_event_attached(server):
    p = _peer(server)
    p.send_tx("ev", [b"event"])
    m = p.wait(["ev"])["ev"]
    assert m.type == M.COMPLETED
    assert m.chaincode_event.event_name == "evt" and m.chaincode_event.payload == b"payload"
    p.close()


def test_big_payload(server):
    p = _peer(server)
    big = bytes(range(32, 96)) * (5 * 16384)  # 5 MiB
    p.send_tx("b", [b"big", big])
    assert _resp(p.wait(["b"])["b"]).payload == big
    p.close()


def test_range_multiple_pages(server):
    state = {("", f"k{i:02d}"): b"v" for i in range(7)}
    p = _peer(server, state=state, page=2)
    p.send_tx("r", [b"range", b"k01", b"k06"])
    assert _resp(p.wait(["r"])["r"]).payload == b"k01,k02,k03,k04,k05"
    assert p.requests.count(M.QUERY_STATE_NEXT) == 2
    p.close()


def test_duplicate_txid_refused(server):
    p = _peer(server)
    p.send_tx("d", [b"slow", b"0.5"])
    time.sleep(0.1)
    p.send_tx("d", [b"slow", b"0"])
    with p.cv:
        assert p.cv.wait_for(lambda: "d" in p.done, 5)
        first = p.done.pop("d")
    assert first.type == M.ERROR and b"duplicate" in first.payload
    assert p.wait(["d"])["d"].type == M.COMPLETED
    p.close()


def test_state_validation_parameter(server):
    p = _peer(server)
    p.send_tx("s", [b"sbe"])
    assert _resp(p.wait(["s"])["s"]).payload == b"policy"
    p.close()


def test_idle_stream_survives_keepalive():
    from fabshim.server import server_options
    opts = [o for o in server_options() if o[0] != "grpc.keepalive_time_ms"] + [("grpc.keepalive_time_ms", 300)]
    s = ChaincodeServer(RawCC(), "127.0.0.1:0", "mycc:abc", options=opts)
    s.start()
    try:
        p = _peer(s, options=[("grpc.keepalive_time_ms", 300), ("grpc.keepalive_permit_without_calls", 1),
                              ("grpc.http2.max_pings_without_data", 0)])
        time.sleep(3)
        p.send_tx("late", [b"put", b"a", b"b"])
        assert p.wait(["late"])["late"].type == M.COMPLETED
        p.close()
    finally:
        s.stop(0)


def test_caller_options_merge_with_defaults():
    from fabshim.server import MAX_MSG, merge_options, server_options
    s = ChaincodeServer(RawCC(), "127.0.0.1:0", "mycc:abc",
                        options=[("grpc.keepalive_time_ms", 300), ("grpc.so_reuseport", 0)])
    opts = dict(s.options)
    assert opts["grpc.keepalive_time_ms"] == 300 and opts["grpc.so_reuseport"] == 0
    assert opts["grpc.max_receive_message_length"] == MAX_MSG == opts["grpc.max_send_message_length"]
    assert opts["grpc.keepalive_permit_without_calls"] == 1
    assert len(s.options) == len(server_options()) + 1  # replaced, not duplicated
    assert merge_options(server_options(), None) == server_options()
    s.start()
    try:  # the 100 MiB limit still applies: a 5 MiB message goes through both ways
        p = _peer(s)
        big = b"\x07" * (5 << 20)
        p.send_tx("b", [b"big", big])
        assert _resp(p.wait(["b"])["b"]).payload == big
        p.close()
    finally:
        s.stop(0)
