"""End-to-end against an in-process fake Gateway: evaluate, submit, commit status, errors, TLS, qscc."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
import pytest
from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.peer import transaction_pb2

from fedfabric.ledger import (CommitError, CommitStatus, EndorseError, Gateway, GatewayError, Identity,
                              SubmitError, Timeouts)
from fedfabric.ledger.errors import CommitStatusError, EvaluateError
from fedfabric.ledger.proposal import build_proposal

from .builders import block, prepared_envelope
from .certs import write_tls
from .fake_gateway import PEER, ChaincodeFailure, FakeGateway, serve


def test_evaluate(gateway: Gateway, fake: FakeGateway) -> None:
    contract = gateway.get_network("fl").get_contract("fedfabric", contract_name="Rounds")
    out = contract.evaluate("get", args=["a", b"b"], transient={"k": b"v"}, endorsing_orgs=["Org2MSP"])
    assert out == b"ok:Rounds:get:a,b"
    req, p = fake.calls["Evaluate"][0]
    assert p["chaincode"] == "fedfabric" and p["channel_header"].channel_id == "fl"
    assert p["transient"] == {"k": b"v"}
    assert list(req.target_organizations) == ["Org2MSP"]
    assert not fake.calls["Endorse"] and not fake.calls["Submit"]


def test_evaluate_chaincode_error(gateway: Gateway, fake: FakeGateway) -> None:
    def fail(fn, args, transient):
        raise ChaincodeFailure("job x not found")
    fake.chaincode = fail
    with pytest.raises(EvaluateError) as ei:
        gateway.get_network("fl").get_contract("fedfabric").evaluate("get")
    assert ei.value.code is grpc.StatusCode.ABORTED
    assert str(ei.value) == "evaluate failed: chaincode response 500, job x not found [peer 127.0.0.1:7051 (Org1MSP)]"


def test_submit(gateway: Gateway, fake: FakeGateway) -> None:
    contract = gateway.get_network("fl").get_contract("fedfabric")
    res = contract.submit("openRound", args=["job1", "3"], transient={"update": b"U"}, endorsing_orgs=["Org1MSP"])
    assert res.result == b"ok:openRound:job1,3"
    assert res.status == "VALID" and res.block_number == 7
    (ereq, p), = fake.calls["Endorse"]
    assert ereq.transaction_id == res.tx_id and list(ereq.endorsing_organizations) == ["Org1MSP"]
    assert p["transient"] == {"update": b"U"}
    (sreq,) = fake.calls["Submit"]
    assert sreq.transaction_id == res.tx_id and sreq.channel_id == "fl"
    (creq,) = fake.calls["CommitStatus"]
    assert creq.transaction_id == res.tx_id and creq.identity == gateway.identity.serialized()


def test_submit_invalid_commit(gateway: Gateway, fake: FakeGateway) -> None:
    fake.commit_code = transaction_pb2.MVCC_READ_CONFLICT
    with pytest.raises(CommitError) as ei:
        gateway.get_network("fl").get_contract("fedfabric").submit("f")
    e = ei.value
    assert e.code == "MVCC_READ_CONFLICT" and e.block_number == 7 and e.tx_id in fake.submitted


def test_endorse_error_message(gateway: Gateway, fake: FakeGateway) -> None:
    def fail(fn, args, transient):
        raise ChaincodeFailure("round 3 is not open")
    fake.chaincode = fail
    with pytest.raises(EndorseError) as ei:
        gateway.get_network("fl").get_contract("fedfabric").submit("submitUpdate")
    assert str(ei.value) == "endorse failed: chaincode response 500, round 3 is not open [peer 127.0.0.1:7051 (Org1MSP)]"
    assert ei.value.details[0].msp_id == PEER[1]
    assert ei.value.tx_id == fake.calls["Endorse"][0][0].transaction_id
    assert not fake.calls["Submit"]


def test_submit_error(gateway: Gateway, fake: FakeGateway) -> None:
    fake.submit_failure = (grpc.StatusCode.UNAVAILABLE, "no orderers available",
                           [("127.0.0.1:7050", "OrdererMSP", "connection refused")])
    with pytest.raises(SubmitError) as ei:
        gateway.get_network("fl").get_contract("fedfabric").submit("f")
    assert ei.value.code is grpc.StatusCode.UNAVAILABLE
    assert "connection refused [peer 127.0.0.1:7050 (OrdererMSP)]" in str(ei.value)
    assert not fake.calls["CommitStatus"]


def test_submit_async_and_status_timeout(gateway: Gateway, fake: FakeGateway) -> None:
    fake.commit_delay = 0.6
    pending = gateway.get_network("fl").get_contract("fedfabric").submit_async("f", args=["1"])
    assert pending.result == b"ok:f:1" and len(pending.tx_id) == 64
    with pytest.raises(CommitStatusError) as ei:
        pending.get_status(timeout=0.1)
    assert ei.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    status = pending.get_status(timeout=5)
    assert status == CommitStatus(pending.tx_id, "VALID", 7, True)


def test_unreachable_peer(identity: Identity) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Gateway.connect(f"127.0.0.1:{port}", identity, default_timeouts=Timeouts(evaluate=2)) as gw:
        with pytest.raises(GatewayError) as ei:
            gw.get_network("fl").get_contract("cc").evaluate("f")
    assert ei.value.code is grpc.StatusCode.UNAVAILABLE
    assert str(ei.value).startswith("evaluate failed: UNAVAILABLE")


def test_tls_with_server_name_override(tmp_path: Path, identity: Identity) -> None:
    tls = write_tls(tmp_path / "tls", sans=["peer0.org1.example.com"])
    servicer = FakeGateway()
    server, port = serve(servicer, tls=tls)
    try:
        with Gateway.connect(f"127.0.0.1:{port}", identity, tls_root_cert=tls["ca"],
                             server_name="peer0.org1.example.com") as gw:
            assert gw.get_network("fl").get_contract("cc").evaluate("f") == b"ok:f:"
        with Gateway.connect(f"127.0.0.1:{port}", identity, tls_root_cert=tls["ca"].read_bytes(),
                             server_name="peer0.org1.example.com") as gw:
            assert gw.get_network("fl").get_contract("cc").evaluate("g") == b"ok:g:"
        other = write_tls(tmp_path / "other", sans=["peer0.org1.example.com"])
        with Gateway.connect(f"127.0.0.1:{port}", identity, tls_root_cert=other["ca"],
                             server_name="peer0.org1.example.com",
                             default_timeouts=Timeouts(evaluate=2)) as gw:
            with pytest.raises(EvaluateError) as ei:
                gw.get_network("fl").get_contract("cc").evaluate("f")
            assert ei.value.code is grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace=None)


def test_client_cert_requires_key(identity: Identity, tmp_path: Path) -> None:
    tls = write_tls(tmp_path / "tls", sans=["localhost"])
    with pytest.raises(ValueError, match="together"):
        Gateway.connect("127.0.0.1:1", identity, tls_root_cert=tls["ca"], client_cert=tls["cert"])


def _qscc_fixture(fake: FakeGateway, identity: Identity) -> tuple[str, list]:
    """A fake qscc answering for one transaction in block 4; returns (tx_id, calls seen)."""
    tx_id, prop = build_proposal(identity, "fl", "fedfabric", "approve", ["job1", "secret"])
    env = prepared_envelope(prop, b"r").SerializeToString()
    blk = block(4, b"\x01" * 32, [env], bytes([transaction_pb2.ENDORSEMENT_POLICY_FAILURE]))
    seen: list[tuple[str, list[bytes]]] = []

    def qscc(fn: str, args: list[bytes], transient: dict) -> bytes:
        seen.append((fn, args))
        assert args[0] == b"fl"
        if fn == "GetChainInfo":
            return ledger_pb2.BlockchainInfo(height=5, currentBlockHash=b"\xab", previousBlockHash=b"\xcd").SerializeToString()
        if fn in ("GetBlockByNumber", "GetBlockByTxID"):
            return blk.SerializeToString()
        if fn == "GetTransactionByID":
            return transaction_pb2.ProcessedTransaction(
                transactionEnvelope=common_pb2.Envelope.FromString(env),
                validationCode=transaction_pb2.ENDORSEMENT_POLICY_FAILURE).SerializeToString()
        raise ChaincodeFailure(f"unknown {fn}")
    fake.chaincode = qscc
    return tx_id, seen


def test_qscc(gateway: Gateway, fake: FakeGateway, identity: Identity) -> None:
    tx_id, seen = _qscc_fixture(fake, identity)
    qs = gateway.get_network("fl").qscc()
    assert qs.chain_info() == {"height": 5, "current_block_hash": "ab", "previous_block_hash": "cd"}
    b = qs.block(4)
    assert b["number"] == 4 and b["transactions"][0]["validation_code"] == "ENDORSEMENT_POLICY_FAILURE"
    assert ("GetBlockByNumber", [b"fl", b"4"]) in seen
    assert qs.block_by_tx_id(tx_id)["transactions"][0]["tx_id"] == tx_id
    # the transaction's block number: CommitStatus fails here (unknown to the fake), so the block is read
    t = qs.transaction(tx_id)
    assert t["tx_id"] == tx_id and t["validation_code"] == "ENDORSEMENT_POLICY_FAILURE" and t["block_number"] == 4
    assert t["function"] == "approve" and t["args_count"] == 2
    assert [fn for fn, _ in seen[-2:]] == ["GetTransactionByID", "GetBlockByTxID"]
    assert all(p["chaincode"] == "qscc" for _, p in fake.calls["Evaluate"])


def test_qscc_transaction_block_number_without_reading_the_block(gateway: Gateway, fake: FakeGateway,
                                                                  identity: Identity) -> None:
    tx_id, seen = _qscc_fixture(fake, identity)
    fake.submitted[tx_id] = common_pb2.Envelope()   # committed: CommitStatus answers from the index
    fake.commit_code, fake.commit_block = transaction_pb2.ENDORSEMENT_POLICY_FAILURE, 4
    t = gateway.get_network("fl").qscc().transaction(tx_id)
    assert t["block_number"] == 4 and t["validation_code"] == "ENDORSEMENT_POLICY_FAILURE"
    assert [fn for fn, _ in seen] == ["GetTransactionByID"]   # no GetBlockByTxID: the block is never fetched
    (creq,) = fake.calls["CommitStatus"]
    assert creq.transaction_id == tx_id and creq.channel_id == "fl"


def test_qscc_timeout(gateway: Gateway, fake: FakeGateway) -> None:
    def slow(fn: str, args: list[bytes], transient: dict) -> bytes:
        time.sleep(1.0)
        return ledger_pb2.BlockchainInfo(height=1).SerializeToString()
    fake.chaincode = slow
    t0 = time.monotonic()
    with pytest.raises(EvaluateError) as ei:
        gateway.get_network("fl").qscc(timeout=0.2).chain_info()
    assert time.monotonic() - t0 < 0.9
    err = ei.value
    assert err.timed_out and err.timeout == 0.2 and err.endpoint == f"127.0.0.1:{fake.port}"
    assert str(err) == (f"evaluate failed: DEADLINE_EXCEEDED: no answer within 0.2s for transaction {err.tx_id} "
                        f"[peer 127.0.0.1:{fake.port}]")
    assert gateway.get_network("fl").qscc(timeout=5).chain_info()["height"] == 1


def test_submit_commit_timeout_names_peer_and_transaction(gateway: Gateway, fake: FakeGateway) -> None:
    fake.commit_delay = 1.0
    contract = gateway.get_network("fl").get_contract("fedfabric")
    t0 = time.monotonic()
    with pytest.raises(CommitStatusError) as ei:
        contract.submit("f", timeout=5, commit_timeout=0.2)
    assert time.monotonic() - t0 < 0.9   # bounded by commit_timeout, not by the Gateway's default (5 s)
    err = ei.value
    assert err.timed_out and err.code is grpc.StatusCode.DEADLINE_EXCEEDED and err.tx_id in fake.submitted
    assert str(err) == (f"commit status failed: DEADLINE_EXCEEDED: no answer within 0.2s for transaction "
                        f"{err.tx_id} [peer 127.0.0.1:{fake.port}]")
    fake.commit_delay = 0.3
    res = contract.submit("g", commit_timeout=5)
    assert res.status == "VALID"


def test_submit_commit_wait_defaults_to_gateway_timeout(identity: Identity, fake: FakeGateway) -> None:
    fake.commit_delay = 1.0
    with Gateway.connect(f"127.0.0.1:{fake.port}", identity,
                         default_timeouts=Timeouts(endorse=5, submit=5, commit_status=0.3)) as gw:
        with pytest.raises(CommitStatusError, match=r"within 0\.3s"):
            gw.get_network("fl").get_contract("fedfabric").submit("f", timeout=10)


def test_evaluate_timeout_names_peer(gateway: Gateway, fake: FakeGateway) -> None:
    def slow(fn: str, args: list[bytes], transient: dict) -> bytes:
        time.sleep(1.0)
        return b""
    fake.chaincode = slow
    with pytest.raises(EvaluateError, match=rf"within 0\.2s for transaction [0-9a-f]{{64}} \[peer 127\.0\.0\.1:{fake.port}\]"):
        gateway.get_network("fl").get_contract("cc").evaluate("f", timeout=0.2)
