"""Node-to-node payload exchange: mutual TLS with the orgs' TLS CAs, hash-checked fetches, and a job above
``endorsed_max_params`` finishing on the hash quorum with one org's node serving a corrupted update."""
from __future__ import annotations

import pytest

from fedfabric.artifacts import ArtifactStore
from fedfabric.node import exchange
from fedfabric.node.bootstrap import create_job
from fedfabric.node.jobfile import parse_job
from fedfabric.node.runtime import ExchangeSettings, NodeOptions, OrgNode

from tests.chaincode.harness import ORGS, init
from tests.ledger.certs import tls_ca, tls_cert

from .memledger import MemClient, drive, wall_clock_ledger


def _org_tls(n: int) -> tuple[dict[str, bytes], dict[str, tuple[bytes, bytes]]]:
    """Per org a TLS CA and a node certificate (127.0.0.1) it issued: (MSP -> CA PEM, MSP -> (cert, key))."""
    roots, leaves = {}, {}
    for i in range(n):
        msp = ORGS[i] if i < len(ORGS) else f"Org{i + 1}MSP"
        ca = tls_ca(f"tlsca.org{i + 1}")
        node = tls_cert(f"fl-node.org{i + 1}", ca, ["127.0.0.1"])
        roots[msp], leaves[msp] = ca.cert_pem, (node.cert_pem, node.key_pem)
    return roots, leaves


@pytest.fixture(scope="module")
def tls():
    return _org_tls(4)


def _tls_of(msp, tls, members=ORGS):
    roots, leaves = tls
    return exchange.NodeTls(leaves[msp][0], leaves[msp][1], {m: roots[m] for m in members})


def test_fetch_is_hash_checked_and_both_sides_must_be_members(tmp_path, tls):
    store = ArtifactStore(tmp_path / "a")
    data = b"masked update bytes" * 1000
    digest = store.put(data)
    srv = exchange.ExchangeServer(store, "127.0.0.1:0", _tls_of("Org1MSP", tls)).start()
    ep = f"127.0.0.1:{srv.port}"
    try:
        assert exchange.fetch(ep, digest, "Org1MSP", _tls_of("Org2MSP", tls), len(data)) == data
        with pytest.raises(exchange.CorruptBlob, match="more than the 10 bytes"):
            exchange.fetch(ep, digest, "Org1MSP", _tls_of("Org2MSP", tls), 10)
        with pytest.raises(exchange.FetchError, match="NOT_FOUND"):
            exchange.fetch(ep, "ab" * 32, "Org1MSP", _tls_of("Org2MSP", tls), 100)
        with pytest.raises(exchange.FetchError, match="INVALID_ARGUMENT"):
            exchange.fetch(ep, "../../etc/passwd", "Org1MSP", _tls_of("Org2MSP", tls), 100)
        # the server is not the org we expected: its certificate does not chain to Org2's TLS CA
        wrong = exchange.NodeTls(*tls[1]["Org3MSP"], {"Org2MSP": tls[0]["Org1MSP"][:0] + tls[0]["Org2MSP"]})
        with pytest.raises(exchange.FetchError, match="UNAVAILABLE"):
            exchange.fetch(ep, digest, "Org2MSP", wrong, len(data))
        # a client whose certificate no member TLS CA issued is refused by the server
        outsider = exchange.NodeTls(*tls[1]["Org4MSP"], {"Org1MSP": tls[0]["Org1MSP"]})
        with pytest.raises(exchange.FetchError, match="UNAVAILABLE"):
            exchange.fetch(ep, digest, "Org1MSP", outsider, len(data))
        store.path(digest).write_bytes(b"x" * len(data))          # the file on the server's disk went bad
        with pytest.raises(exchange.CorruptBlob, match="served bytes hashing to"):
            exchange.fetch(ep, digest, "Org1MSP", _tls_of("Org2MSP", tls), len(data))
    finally:
        srv.stop()


def test_a_job_above_the_threshold_finishes_on_the_hash_quorum_leaving_a_corrupt_update_out(tmp_path, tls):
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    doc = {"job_id": "big", "dataset": "breast_cancer", "model": {"arch": "logreg"}, "rounds": 2,
           "training": {"epochs": 1, "lr": 0.05}, "privacy": "secure", "participants": ["org1", "org2", "org3"],
           "windows": {"registration_s": 30, "submission_s": 30, "approval_s": 30}, "endorsed_max_params": 10}
    create_job(admin, parse_job(doc), {f"org{i}": f"Org{i}MSP" for i in (1, 2, 3)})
    nodes = [OrgNode(MemClient(led, m), m, "big", tmp_path / m, NodeOptions(grace=0.0, tick=0.01),
                     exchange_settings=ExchangeSettings("127.0.0.1:0", "127.0.0.1:0", _tls_of(m, tls)))
             for m in ORGS]
    try:
        def submitted(*who):
            return lambda: all(admin.round_report("big", 1)["participants"][m]["update"] for m in who)

        drive(led, nodes, until=lambda: all(p["register_tx"] for p in admin.round_report("big", 1)["participants"].values()))
        drive(led, nodes[:2], until=submitted("Org1MSP", "Org2MSP"))
        drive(led, nodes[2:], until=submitted("Org3MSP"))
        bad = admin.round_report("big", 1)["participants"]["Org3MSP"]["update"]["sha256"]
        path = nodes[2].store.path(bad)
        path.write_bytes(bytes(path.stat().st_size))             # org3's node now serves a corrupted update
        drive(led, nodes)
    finally:
        for n in nodes:
            if n._server is not None:
                n._server.stop()
    pvt = [w[2] for tx in led.stub.rw_log for w in tx.writes if isinstance(w, tuple)]
    assert pvt and not [k for k in pvt if k.startswith("\x00upd\x00")]   # seeds went private, never a payload
    r1 = admin.get_round("big", 1)
    assert r1.state.value == "finalized" and r1.outcome["contributors"] == ["Org1MSP", "Org2MSP"]
    assert r1.outcome["aggregate"]["recomputed"] is False and r1.outcome["settlement"]["slashed"] == {"Org3MSP": 10}
    rep = admin.round_report("big", 1)["participants"]
    assert rep["Org1MSP"]["revealed_for"] == ["Org3MSP"] and rep["Org2MSP"]["revealed_for"] == ["Org3MSP"]
    v2 = admin.get_version("big", 2)
    assert [c["msp_id"] for c in v2["contributors"]] == ORGS       # org3 is back in round 2
