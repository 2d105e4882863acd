"""Every input the fuzzers found that broke the shim, replayed through its harness, and the fix
checked directly."""
from __future__ import annotations

import base64

import pytest
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2 as shim

from fabshim.errors import ShimError
from fabshim.handler import Handler

from . import frames, harness_handler, harness_router

M = shim.ChaincodeMessage

# handler harness, found in its first 200 executions: the peer answers GET_STATE_BY_RANGE with bytes
# that are not a QueryResponse; the stub let protobuf's DecodeError out (now ShimError)
MALFORMED_QUERY_RESPONSE = base64.b64decode(
    "AggCAggEGQgFGg0KBXJhbmdlCgFhCgF6IgJ0MToCY2gUCA0aEAoICgYKAWsSAXYQARoClTESCA0aDgoICgYKAWsSAXYaAnEx")

# issue 13: a message of a type the protocol does not define ended the stream with a ValueError
UNKNOWN_TYPE = frames.join([M(type=M.REGISTERED).SerializeToString(), M(type=M.READY).SerializeToString(),
                            M(type=999, txid="t").SerializeToString()])


@pytest.mark.parametrize("data", [MALFORMED_QUERY_RESPONSE, UNKNOWN_TYPE], ids=["malformed-query", "type-999"])
def test_handler_regression_inputs(data: bytes) -> None:
    harness_handler.one_input(data)


def test_seeds_pass_both_harnesses() -> None:
    for data in harness_handler.seeds():
        harness_handler.one_input(data)
    for data in harness_router.seeds():
        harness_router.one_input(data)


def test_malformed_peer_answer_is_a_shim_error() -> None:
    seen: list[BaseException] = []

    class Range:
        def invoke(self, stub):
            try:
                list(stub.get_state_by_range("a", "z"))
            except Exception as exc:
                seen.append(exc)
            raise RuntimeError("done")

    h = harness_handler.FuzzHandler(Range(), iter([M(type=M.RESPONSE, payload=b"\x08\x0d\x1a").SerializeToString()]))
    for m in (M(type=M.REGISTERED), M(type=M.READY)):
        assert h.dispatch(m)
    tx = M(type=M.TRANSACTION, txid="t1", channel_id="ch",
           payload=chaincode_pb2.ChaincodeInput(args=[b"range"]).SerializeToString())
    assert h.dispatch(tx)
    assert len(seen) == 1 and isinstance(seen[0], ShimError)
    assert str(seen[0]) == "malformed query response from the peer (not a QueryResponse)"


def test_unknown_type_is_answered_and_the_handler_goes_on() -> None:
    h = Handler(object(), "cc:1", harness_handler.InlineExecutor())
    assert h.dispatch(M(type=999, txid="abc", channel_id="ch"))
    reply = h._out.get_nowait()
    assert (reply.type, reply.txid, reply.channel_id) == (M.ERROR, "abc", "ch")
    assert h.dispatch(M(type=M.REGISTERED)) and h.state == "established"
