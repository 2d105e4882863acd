"""Live: the ledger client against a real Fabric network (the session's ``live_network``).

Deploys the tiny echo chaincode (``tests/ledger/echo_chaincode.py``) beside the product chaincode,
on its own chaincode-server ports, and checks submit/evaluate/errors/events/qscc end to end.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Iterator

import pytest

from fedfabric.ledger import CommitError, EndorseError, Gateway, GatewayError

from .live_helpers import channel_of, connect_org, wait_until_endorsable

pytestmark = pytest.mark.live

ECHO_PORT_OFFSET = 10  # chaincode servers at each org's chaincode_server_port + 10


@pytest.fixture(scope="module")
def echo(live_network) -> str:
    from fedfabric.network.deploy import ChaincodeDeployment
    live_network.deploy(ChaincodeDeployment(name="echo", version="1", port_offset=ECHO_PORT_OFFSET,
                                            command=(sys.executable, "-m", "tests.ledger.echo_chaincode")))
    with connect_org(live_network, "org1") as gw:
        wait_until_endorsable(gw.get_network(channel_of(live_network)).get_contract("echo"), "put", ["warmup", "1"])
    return "echo"


@pytest.fixture(scope="module")
def gw1(live_network, echo) -> Iterator[Gateway]:
    with connect_org(live_network, "org1") as gw:
        yield gw


@pytest.fixture(scope="module")
def gw2(live_network, echo) -> Iterator[Gateway]:
    with connect_org(live_network, "org2") as gw:
        yield gw


def test_submit_evaluate_and_events(live_network, gw1: Gateway, gw2: Gateway) -> None:
    ch = channel_of(live_network)
    contract = gw1.get_network(ch).get_contract("echo")
    start = gw2.get_network(ch).qscc().chain_info()["height"]
    stream = gw2.get_network(ch).chaincode_events("echo", start_block=start, timeout=60)
    got = []
    consumer = threading.Thread(target=lambda: got.extend(stream), daemon=True)
    consumer.start()
    res = contract.submit("put", args=["k1", b"v1"])
    assert res.result == b"v1" and res.status == "VALID" and res.block_number >= start
    assert contract.evaluate("get", args=["k1"]) == b"v1"
    assert contract.evaluate("transient", transient={"b": b"x", "a": b"y"}) == b"a,b"
    pending = contract.submit_async("put", args=["k2", "v2"])
    status = pending.get_status(timeout=30)
    assert status.successful and status.code == "VALID" and status.tx_id == pending.tx_id
    deadline = time.monotonic() + 15
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    stream.close()
    consumer.join(5)
    assert not consumer.is_alive()
    assert [(e.tx_id, e.event_name, e.payload) for e in got] == [(res.tx_id, "Put", b"k1"), (pending.tx_id, "Put", b"k2")]
    # resume after the first event: only the second comes back
    with gw2.get_network(ch).chaincode_events("echo", start_block=res.block_number, after_tx_id=res.tx_id,
                                              timeout=2) as again:
        assert [e.tx_id for e in again] == [pending.tx_id]


def test_chaincode_error_names_peer(live_network, gw1: Gateway) -> None:
    contract = gw1.get_network(channel_of(live_network)).get_contract("echo")
    with pytest.raises(EndorseError) as ei:
        contract.submit("nope")
    assert "round 3 is not open [peer 127.0.0.1:" in str(ei.value) and "(Org1MSP)]" in str(ei.value)
    with pytest.raises(GatewayError, match="round 3 is not open"):
        contract.evaluate("nope")


def test_mvcc_conflict_is_commit_error(live_network, gw1: Gateway) -> None:
    contract = gw1.get_network(channel_of(live_network)).get_contract("echo")
    first = contract.submit_async("incr", args=["n"])
    with pytest.raises(CommitError) as ei:
        contract.submit("incr", args=["n"])  # endorsed on the same version as `first`
    assert ei.value.code == "MVCC_READ_CONFLICT" and ei.value.block_number is not None
    assert first.get_status(30).successful


def test_qscc_hash_chain(live_network, gw2: Gateway) -> None:
    qs = gw2.get_network(channel_of(live_network)).qscc()
    info = qs.chain_info()
    tip = qs.block(info["height"] - 1)
    assert tip["header_hash"] == info["current_block_hash"] and tip["data_hash_ok"]
    prev = qs.block(info["height"] - 2)
    assert prev["header_hash"] == tip["previous_hash"] == info["previous_block_hash"]
    genesis = qs.block(0)
    assert genesis["transactions"][0]["type"] == "CONFIG"
    tx = next(t for t in tip["transactions"] if t["type"] == "ENDORSER_TRANSACTION")
    detail = qs.transaction(tx["tx_id"])
    assert detail["block_number"] == info["height"] - 1 and detail["validation_code"] == tx["validation_code"]
