"""Chaincode event streams: start positions, resume after a dropped stream, close from another thread."""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pytest
from fabric_protos.peer import chaincode_event_pb2

from fedfabric.ledger import ChaincodeEvent, Gateway, Identity
from fedfabric.ledger.errors import EventsError

from .fake_gateway import FakeGateway, serve
from tests.polling import wait_until




def _ev(tx: str, name: str, cc: str = "fedfabric") -> chaincode_event_pb2.ChaincodeEvent:
    return chaincode_event_pb2.ChaincodeEvent(chaincode_id=cc, tx_id=tx, event_name=name, payload=name.encode())


@pytest.fixture
def blocks(fake: FakeGateway) -> FakeGateway:
    fake.event_blocks = [
        (5, [_ev("t5a", "RoundOpened"), _ev("other", "X", cc="othercc"), _ev("t5b", "Joined")]),
        (6, [_ev("t6a", "Submitted"), _ev("t6b", "Submitted")]),
        (7, [_ev("t7a", "Aggregated")]),
    ]
    return fake


def test_events_from_start_block(gateway: Gateway, blocks: FakeGateway) -> None:
    with gateway.get_network("fl").chaincode_events("fedfabric", start_block=5) as stream:
        got = list(stream)
    assert got[0] == ChaincodeEvent(5, "t5a", "fedfabric", "RoundOpened", b"RoundOpened")
    assert [(e.block_number, e.tx_id) for e in got] == [(5, "t5a"), (5, "t5b"), (6, "t6a"), (6, "t6b"), (7, "t7a")]
    assert stream.checkpoint == (7, "t7a")
    (req,) = blocks.calls["ChaincodeEvents"]
    assert req.channel_id == "fl" and req.chaincode_id == "fedfabric"
    assert req.start_position.specified.number == 5 and req.after_transaction_id == ""


def test_default_start_is_the_height_at_open(gateway: Gateway, blocks: FakeGateway) -> None:
    blocks.next_commit_block = 7
    stream = gateway.get_network("fl").chaincode_events("fedfabric")
    assert stream.start_block == 7
    assert [e.tx_id for e in stream] == ["t7a"]
    (req,) = blocks.calls["ChaincodeEvents"]
    assert req.start_position.specified.number == 7 and req.after_transaction_id == ""
    (ev_req, p), = blocks.calls["Evaluate"]
    assert p["chaincode"] == "qscc" and p["args"] == [b"GetChainInfo", b"fl"]


def test_next_commit_without_reconnect_needs_no_height(gateway: Gateway, blocks: FakeGateway) -> None:
    blocks.next_commit_block = 7
    stream = gateway.get_network("fl").chaincode_events("fedfabric", reconnect=False)
    assert stream.start_block is None
    assert [e.tx_id for e in stream] == ["t7a"]
    assert blocks.calls["ChaincodeEvents"][0].start_position.WhichOneof("Type") == "next_commit"
    assert not blocks.calls["Evaluate"]


def test_reconnect_before_first_event_misses_nothing(gateway: Gateway, blocks: FakeGateway) -> None:
    """Opened "from the next commit"; the peer goes away before any event while blocks 7 and 8 commit."""
    blocks.event_blocks.append((8, [_ev("t8a", "Late")]))
    blocks.next_commit_block = 7
    blocks.events_fail_after = 0

    def commits_during_outage() -> None:
        blocks.next_commit_block = 9

    blocks.on_events_failure = commits_during_outage
    stream = gateway.get_network("fl").chaincode_events("fedfabric", timeout=10)
    got = [e.tx_id for e in stream]
    assert got == ["t7a", "t8a"]
    first, second = blocks.calls["ChaincodeEvents"]
    for req in (first, second):
        assert req.start_position.specified.number == 7 and req.after_transaction_id == ""


def test_unreadable_height_falls_back_to_next_commit(gateway: Gateway, blocks: FakeGateway, caplog) -> None:
    blocks.next_commit_block = 7
    blocks.chain_info_failure = grpc.StatusCode.PERMISSION_DENIED
    with caplog.at_level(logging.WARNING, logger="fedfabric.ledger.events"):
        stream = gateway.get_network("fl").chaincode_events("fedfabric")
    assert stream.start_block is None
    assert any("chain height of fl not readable" in r.getMessage() for r in caplog.records)
    assert [e.tx_id for e in stream] == ["t7a"]
    assert blocks.calls["ChaincodeEvents"][0].start_position.WhichOneof("Type") == "next_commit"


def test_after_tx_id_checkpoint(gateway: Gateway, blocks: FakeGateway) -> None:
    got = list(gateway.get_network("fl").chaincode_events("fedfabric", start_block=6, after_tx_id="t6a"))
    assert [e.tx_id for e in got] == ["t6b", "t7a"]
    assert blocks.calls["ChaincodeEvents"][0].after_transaction_id == "t6a"


def test_resumes_after_unavailable(gateway: Gateway, blocks: FakeGateway) -> None:
    blocks.events_fail_after = 2  # blocks 5 and 6 delivered, then the peer "goes away"
    got = list(gateway.get_network("fl").chaincode_events("fedfabric", start_block=5, timeout=10))
    assert [e.tx_id for e in got] == ["t5a", "t5b", "t6a", "t6b", "t7a"]  # no loss, no repeat
    first, second = blocks.calls["ChaincodeEvents"]
    assert second.start_position.specified.number == 6 and second.after_transaction_id == "t6b"


def test_no_reconnect_raises(gateway: Gateway, blocks: FakeGateway) -> None:
    blocks.events_fail_after = 1
    stream = gateway.get_network("fl").chaincode_events("fedfabric", start_block=5, reconnect=False)
    assert next(stream).tx_id == "t5a" and next(stream).tx_id == "t5b"
    with pytest.raises(EventsError, match="UNAVAILABLE") as ei:
        next(stream)
    assert stream.closed
    assert str(ei.value).endswith(f"[peer {gateway.endpoint}]") and ei.value.endpoint == gateway.endpoint


def test_close_from_other_thread(gateway: Gateway, blocks: FakeGateway) -> None:
    blocks.events_hold = True
    stream = gateway.get_network("fl").chaincode_events("fedfabric", start_block=7)
    got: list[str] = []
    done = threading.Event()

    def consume() -> None:
        for ev in stream:
            got.append(ev.tx_id)
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    assert wait_until(lambda: got == ["t7a"])
    time.sleep(0.1)
    assert not done.is_set()  # the stream stays open while the peer holds it
    stream.close()
    assert done.wait(5), "consumer did not stop after close()"
    assert got == ["t7a"]


def test_timeout_ends_iteration(gateway: Gateway, blocks: FakeGateway) -> None:
    blocks.events_hold = True
    start = time.monotonic()
    got = [e.tx_id for e in gateway.get_network("fl").chaincode_events("fedfabric", start_block=6, timeout=0.5)]
    assert got == ["t6a", "t6b", "t7a"]
    assert 0.4 < time.monotonic() - start < 5


def test_resumes_after_server_restart(identity: Identity, blocks: FakeGateway) -> None:
    """A real transport failure: the server dies mid-stream and comes back on the same port."""
    first = FakeGateway()
    first.event_blocks = blocks.event_blocks[:2]
    first.events_hold = True
    server, port = serve(first)
    second_server = None
    try:
        with Gateway.connect(f"127.0.0.1:{port}", identity) as gw:
            stream = gw.get_network("fl").chaincode_events("fedfabric", start_block=5, timeout=15)
            got = [next(stream).tx_id for _ in range(4)]
            server.stop(grace=None).wait()
            second = FakeGateway()
            second.event_blocks = blocks.event_blocks
            second_server, _ = serve(second, port=port)
            got.append(next(stream).tx_id)
            stream.close()
        assert got == ["t5a", "t5b", "t6a", "t6b", "t7a"]
        (req,) = second.calls["ChaincodeEvents"]
        assert req.start_position.specified.number == 6 and req.after_transaction_id == "t6b"
    finally:
        server.stop(grace=None)
        if second_server is not None:
            second_server.stop(grace=None)



def test_closing_gateway_ends_stream_quietly(fake: FakeGateway, identity: Identity, blocks: FakeGateway) -> None:
    blocks.events_hold = True
    gw = Gateway.connect(f"127.0.0.1:{fake.port}", identity)
    stream = gw.get_network("fl").chaincode_events("fedfabric", start_block=7)
    errors: list[BaseException] = []
    got: list[str] = []

    def consume() -> None:
        try:
            for ev in stream:
                got.append(ev.tx_id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    assert wait_until(lambda: got == ["t7a"])
    gw.close()
    t.join(5)
    assert not t.is_alive() and errors == [] and got == ["t7a"] and stream.closed
