"""Live: hostile chaincode streams cannot stall a real peer's transactions (issue 13, items 1 and 5).

Deploys the demo contract (``tests/chaincode_demo/demo_cc.py``, a fabshim ChaincodeServer with its
default bounds) as chaincode ``shimhard`` with a one-of-any-org policy. With the package's chaincode
client certificate, the test dials each org's chaincode server directly, as a hostile local user
who read the key could: one stream sends 300 TRANSACTIONs and never answers their GET_STATE, 300
more streams sit idle; meanwhile transactions through each org's peer must keep committing, a new
stream must get its REGISTER at once, and huge function names must come back as the contract's short
error, not as a broken stream.

Run it on a network of its own ports: ``FEDFABRIC_TEST_PORT_OFFSET=16000`` (see tests/ports.py).
"""
from __future__ import annotations

import sys
import time
import uuid
from typing import Iterator

import grpc
import pytest

from fedfabric.ledger import EndorseError, EvaluateError, Gateway
from fedfabric.network import deploy as ccdeploy
from fedfabric.network.ccmaterial import CCTls
from fedfabric.network.config import PeerOrg
from fabric_protos.peer import chaincode_shim_pb2 as shim

from tests.ledger.live_helpers import channel_of, connect_org
from tests.polling import wait_until

from .fakepeer import FakePeer, HostilePeer, IdleStreams

pytestmark = pytest.mark.live

M = shim.ChaincodeMessage
CC = "shimhard"
PORT_OFFSET = 40          # servers at each org's chaincode_server_port + 40 (echo + 10, rtdemo + 20)
HOSTILE_TXS = 300         # past the default 256 in flight per stream
DEFAULT_RUNNING = 16      # a quarter of the default 64 workers
INFLIGHT = b"too many transactions in flight on this stream"


def _uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def hard(live_network) -> Iterator[dict[str, Gateway]]:
    cfg = live_network.config
    any_org = "OR(" + ",".join(f"'{o.msp_id}.peer'" for o in cfg.orgs) + ")"
    live_network.deploy(ccdeploy.ChaincodeDeployment(
        name=CC, version="1", port_offset=PORT_OFFSET, policy=any_org,
        command=(sys.executable, "-m", "tests.chaincode_demo.demo_cc")))
    gws = {o.name: connect_org(live_network, o.name) for o in cfg.orgs}
    try:
        for org in cfg.orgs:  # each org's own peer endorses (its gateway targets it)
            _submit(live_network, gws, org, "put", [f"warm-{org.name}", "1"], retry_for=60)
        yield gws
    finally:
        for gw in gws.values():
            gw.close()


def _contract(net, gw: Gateway):
    return gw.get_network(channel_of(net)).get_contract(CC)


def _submit(net, gws, org: PeerOrg, fn: str, args: list, retry_for: float = 0.0):
    """Submit through ``org``'s peer only; the result."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            return _contract(net, gws[org.name]).submit(fn, args=args, endorsing_orgs=[org.msp_id])
        except EndorseError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _target_and_creds(net, org: PeerOrg) -> tuple[str, grpc.ChannelCredentials]:
    """What a local user holding the package's client key could dial: the org's chaincode server."""
    tls = CCTls(ccdeploy.cc_dir(net.layout, CC, org) / "tls")
    creds = grpc.ssl_channel_credentials(root_certificates=tls.ca.read_bytes(),
                                         private_key=tls.client_key.read_bytes(),
                                         certificate_chain=tls.client_cert.read_bytes())
    return f"{net.config.host}:{org.chaincode_server_port + PORT_OFFSET}", creds


def _hostile(net, org: PeerOrg) -> HostilePeer:
    target, creds = _target_and_creds(net, org)
    h = HostilePeer(target, creds=creds)
    assert wait_until(lambda: h.register is not None, timeout=5)
    for i in range(HOSTILE_TXS):
        h.send_tx(f"hostile-{org.name}-{i}", [b"get", b"never-answered"], channel=net.config.channel)
    return h


def test_hostile_streams_do_not_stall_transactions_through_any_peer(live_network, hard) -> None:
    net, orgs = live_network, live_network.config.orgs
    hostiles = {org.name: _hostile(net, org) for org in orgs}
    try:
        for org in orgs:
            h = hostiles[org.name]
            excess = [f"hostile-{org.name}-{i}" for i in range(256, HOSTILE_TXS)]
            refused = h.wait(excess, timeout=10)  # answered at once, not after any timeout
            assert all(m.type == M.ERROR and m.payload.startswith(INFLIGHT) for m in refused.values())
            assert wait_until(lambda: len(h.unanswered) == DEFAULT_RUNNING, timeout=5)
        latencies = []
        for round_ in range(3):
            for org in orgs:
                key = f"ctr-{org.name}-{_uid()}"
                t0 = time.monotonic()
                res = _submit(net, hard, org, "add", [key, str(round_ + 1)])
                latencies.append(time.monotonic() - t0)
                assert res.status == "VALID" and res.result == str(round_ + 1).encode()
                got = _contract(net, hard[org.name]).evaluate("get", args=[key], endorsing_orgs=[org.msp_id])
                assert got == str(round_ + 1).encode()
        assert max(latencies) < 5.0, latencies  # a block is 0.2 s; the peers' own timeout is 30 s
        for h in hostiles.values():  # the hostile streams are still held, not dropped
            assert not h.ended(0.05) and len(h.unanswered) == DEFAULT_RUNNING
    finally:
        for h in hostiles.values():
            h.close()


def test_new_stream_registers_at_once_with_300_idle_streams_and_a_hostile_one(live_network, hard) -> None:
    net = live_network
    org = net.config.org("org2")
    target, creds = _target_and_creds(net, org)
    hostile = _hostile(net, org)
    idle = IdleStreams(target, 300, creds)
    try:
        time.sleep(1.0)  # let the server admit (and drop) them
        t0 = time.monotonic()
        fresh = FakePeer(target, {}, creds=creds)
        assert wait_until(lambda: fresh.register is not None, timeout=3)
        registered = time.monotonic() - t0
        assert registered < 1.0, registered
        fresh.close()
        # the peer's own stream finished its handshake: the unregistered idle ones went first
        res = _submit(net, hard, org, "add", [f"ctr-{_uid()}", "1"])
        assert res.status == "VALID"
    finally:
        idle.close()
        hostile.close()


@pytest.mark.parametrize("size", [6 * 1024, 16 * 1024])
def test_huge_function_name_gets_the_short_error_not_a_broken_stream(live_network, hard, size: int) -> None:
    net = live_network
    org = net.config.org("org1")
    c = _contract(net, hard[org.name])
    with pytest.raises(EvaluateError) as ev:
        c.evaluate("f" * size, endorsing_orgs=[org.msp_id])
    with pytest.raises(EndorseError) as en:
        c.submit("demo:" + "g" * size, args=["k"], endorsing_orgs=[org.msp_id])
    for err in (ev.value, en.value):
        text = str(err)
        assert "not found" in text and "RST_STREAM" not in text and "Stream removed" not in text, text[:300]
        assert len(text) < 3000, len(text)
