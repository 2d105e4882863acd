"""ErrorDetail extraction from gRPC status details and user-facing messages."""

from __future__ import annotations

import grpc
from fabric_protos.gateway import gateway_pb2

from fedfabric.ledger import CommitError, EndorseError, ErrorDetail, GatewayError
from fedfabric.ledger._rpcstatus import STATUS_DETAILS_KEY, decode_details, encode_status
from fedfabric.ledger.errors import SubmitError, error_details


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, message: str, trailers: tuple = ()) -> None:
        self._code, self._message, self._trailers = code, message, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple:
        return self._trailers


def _detail(address: str, msp: str, message: str) -> tuple[str, bytes]:
    return ("type.googleapis.com/gateway.ErrorDetail",
            gateway_pb2.ErrorDetail(address=address, msp_id=msp, message=message).SerializeToString())


def test_status_codec_round_trip() -> None:
    blob = encode_status(10, "m", [("type.googleapis.com/x.Y", b"\x01\x02")])
    assert decode_details(blob) == [("type.googleapis.com/x.Y", b"\x01\x02")]
    assert decode_details(b"\xff\xff\xff") == []


def test_endorse_error_names_each_peer() -> None:
    blob = encode_status(10, "failed to endorse transaction, see attached details for more info", [
        _detail("127.0.0.1:7051", "Org1MSP", "chaincode response 500, round 3 is not open"),
        ("type.googleapis.com/google.rpc.DebugInfo", b"ignored"),
        _detail("127.0.0.1:9051", "Org2MSP", "chaincode response 500, round 3 is not open"),
    ])
    err = FakeRpcError(grpc.StatusCode.ABORTED, "failed to endorse transaction",
                       (("other", "x"), (STATUS_DETAILS_KEY, blob)))
    e = EndorseError.from_rpc_error(err, tx_id="abc")
    assert e.code is grpc.StatusCode.ABORTED and e.tx_id == "abc"
    assert e.details == [ErrorDetail("127.0.0.1:7051", "Org1MSP", "chaincode response 500, round 3 is not open"),
                         ErrorDetail("127.0.0.1:9051", "Org2MSP", "chaincode response 500, round 3 is not open")]
    assert str(e) == ("endorse failed: chaincode response 500, round 3 is not open [peer 127.0.0.1:7051 (Org1MSP)]; "
                      "chaincode response 500, round 3 is not open [peer 127.0.0.1:9051 (Org2MSP)]")
    assert isinstance(e, GatewayError)


def test_error_without_details_shows_code_and_message() -> None:
    e = SubmitError.from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    assert e.details == []
    assert str(e) == "submit failed: UNAVAILABLE: connection refused"


def test_garbage_trailers_do_not_hide_error() -> None:
    err = FakeRpcError(grpc.StatusCode.INTERNAL, "boom", ((STATUS_DETAILS_KEY, b"\xff\x00garbage"),))
    assert error_details(err) == []
    assert "boom" in str(GatewayError.from_rpc_error(err))


def test_commit_error() -> None:
    e = CommitError("tx1", "MVCC_READ_CONFLICT", 12)
    assert (e.tx_id, e.code, e.validation_code, e.block_number) == ("tx1", "MVCC_READ_CONFLICT", "MVCC_READ_CONFLICT", 12)
    assert str(e) == "commit failed: transaction tx1 committed as invalid (MVCC_READ_CONFLICT) in block 12"
    assert isinstance(e, GatewayError)


def test_error_without_details_names_the_peer() -> None:
    err = SubmitError.from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "no orderers"), "ab" * 32,
                                     endpoint="127.0.0.1:7051", timeout=5.0)
    assert str(err) == "submit failed: UNAVAILABLE: no orderers [peer 127.0.0.1:7051]"
    assert err.endpoint == "127.0.0.1:7051" and err.timeout == 5.0 and not err.timed_out


def test_deadline_error_says_what_timed_out() -> None:
    tx = "cd" * 32
    err = GatewayError.from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), tx,
                                      endpoint="127.0.0.1:7051", timeout=2.5)
    assert err.timed_out
    assert str(err) == f"gateway call failed: DEADLINE_EXCEEDED: no answer within 2.5s for transaction {tx} " \
                       "[peer 127.0.0.1:7051]"
    bare = GatewayError.from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))
    assert str(bare) == "gateway call failed: DEADLINE_EXCEEDED: Deadline Exceeded"
    detailed = GatewayError.from_rpc_error(FakeRpcError(grpc.StatusCode.ABORTED, "x", (
        (STATUS_DETAILS_KEY, encode_status(10, "x", [_detail("127.0.0.1:9051", "Org2MSP", "boom")])),)),
        endpoint="127.0.0.1:7051")
    assert str(detailed) == "gateway call failed: boom [peer 127.0.0.1:9051 (Org2MSP)]"  # details name the peers
