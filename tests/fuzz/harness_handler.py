"""Fuzz target: the handler of one Connect stream fed arbitrary ChaincodeMessages.

Each frame of the input (see :mod:`tests.fuzz.frames`) is parsed as a ChaincodeMessage and handed to
:meth:`fabshim.handler.Handler.dispatch`, as the stream's reader does. Transactions run inline on the
dispatching thread; a stub request the chaincode sends is answered with the next frame (a RESPONSE
or ERROR gets the request's ids, anything else is dispatched as it is) or, when the input is used
up, not at all (the request times out). The chaincode calls every stub request with the arguments
the transaction carries.

Findings: any exception out of ``dispatch``; an exception other than ShimError or ValueError out
of a stub call; an error text the shim sends longer than its bound; a transaction left unanswered
or answered twice.
"""
from __future__ import annotations

import collections
from concurrent.futures import Executor, Future
from typing import Iterator, Optional

from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2 as shim, proposal_pb2, proposal_response_pb2
from google.protobuf.message import DecodeError

from fabshim.echo import MAX_ERROR_TEXT
from fabshim.errors import ShimError
from fabshim.handler import Handler
from fabshim.limits import StreamLimits
from fabshim.stub import Response

from tests.shim.fakepeer import STUB_REQUESTS

from . import frames

M = shim.ChaincodeMessage
LIMITS = StreamLimits(max_inflight=4, max_running=1, request_timeout=0.0005, max_backlog=64 << 10)
ERROR_TEXT_BOUND = MAX_ERROR_TEXT + 40  # the cut text plus its "… (N characters)" note
ALLOWED = (ShimError, ValueError)       # what a stub call may raise on bad input or a bad peer answer


class Finding(AssertionError):
    """An input broke one of the harness's properties."""


class InlineExecutor(Executor):
    """Runs each submitted call at once on the caller's thread; its exceptions propagate."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        fn(*args, **kwargs)
        f: Future = Future()
        f.set_result(None)
        return f


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class StubExerciser:
    """A raw chaincode: the function (first argument) picks stub calls, the next arguments feed them."""

    def __init__(self) -> None:
        self.unexpected: list[BaseException] = []

    def init(self, stub) -> Response:
        return self.invoke(stub)

    def invoke(self, stub) -> Response:
        args = stub.get_args() + [b""] * 3
        fn, a, b, c = args[0], _text(args[1]), _text(args[2]), args[3]
        try:
            out = self._call(stub, fn, a, b, c)
        except ALLOWED as exc:
            return Response(500, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            self.unexpected.append(exc)
            raise
        if fn == b"fail":
            return Response(500, a)
        return Response(200, "", out)

    @staticmethod
    def _call(stub, fn: bytes, a: str, b: str, c: bytes) -> bytes:
        if fn == b"get":
            return stub.get_state(a) or b""
        if fn == b"put":
            stub.put_state(a, c)
        elif fn == b"del":
            stub.del_state(a)
        elif fn == b"range":
            with stub.get_state_by_range(a, b) as it:
                return b"".join(v for _, v in it)
        elif fn == b"first":  # closes the iterator after one row
            it = stub.get_state_by_range(a, b)
            next(it, None)
            it.close()
        elif fn == b"pcomp":
            return b"".join(v for _, v in stub.get_state_by_partial_composite_key(a, [b]))
        elif fn == b"page":
            rows, md = stub.get_state_by_range_with_pagination(a, b, len(c), _text(c))
            return md.bookmark.encode() + b"".join(v for _, v in rows)
        elif fn == b"ppage":
            rows, md = stub.get_state_by_partial_composite_key_with_pagination(a, [b], len(c))
            return str(md.fetched_records_count).encode()
        elif fn == b"rich":
            return b"".join(v for _, v in stub.get_query_result(a))
        elif fn == b"richpage":
            rows, md = stub.get_query_result_with_pagination(a, len(c))
            return md.bookmark.encode()
        elif fn == b"hist":
            return b"".join(m.value for m in stub.get_history_for_key(a))
        elif fn == b"priv":
            stub.put_private_data(a, b, c)
            got = stub.get_private_data(a, b) or b""
            return got + (stub.get_private_data_hash(a, b) or b"")
        elif fn == b"privrange":
            return b"".join(v for _, v in stub.get_private_data_by_range(a, b, _text(c)))
        elif fn == b"privquery":
            return b"".join(v for _, v in stub.get_private_data_query_result(a, b))
        elif fn == b"privdel":
            stub.del_private_data(a, b)
            stub.purge_private_data(a, b)
        elif fn == b"sbe":
            stub.set_state_validation_parameter(a, c)
            return stub.get_private_data_validation_parameter(b, a) or b""
        elif fn == b"call":
            r = stub.invoke_chaincode(a, [c], b)  # never raises: failures are status-500 Responses
            return r.message.encode() + r.payload
        elif fn == b"event":
            stub.set_event(a, c)
        elif fn == b"facts":
            stub.get_signed_proposal()
            return (stub.get_creator() + stub.get_binding() + b"".join(sorted(stub.get_transient()))
                    + stub.get_tx_timestamp().SerializeToString())
        elif fn == b"split":
            return stub.split_composite_key(stub.create_composite_key(a, [b]))[0].encode()
        return b""


class FuzzHandler(Handler):
    """A handler whose peer side is the fuzz input: stub requests are answered from ``frames``."""

    def __init__(self, chaincode: StubExerciser, inputs: Iterator[bytes]) -> None:
        super().__init__(chaincode, "fuzz:1", InlineExecutor(), LIMITS)
        self._inputs = inputs
        self.sent: list[M] = []
        self.asked: collections.Counter = collections.Counter()  # replies each (channel, txid) may get

    def dispatch(self, msg: M) -> bool:
        routed = msg.type in (M.RESPONSE, M.ERROR) and self.ready  # a reply: answered by nothing
        if msg.type != M.KEEPALIVE and not routed:
            self.asked[(msg.channel_id, msg.txid)] += 1
        return super().dispatch(msg)

    def send(self, msg: M) -> None:
        super().send(msg)
        self.sent.append(msg)
        if msg.type in STUB_REQUESTS:
            reply = parse(next(self._inputs, None))
            if reply is None:
                return  # no answer: the request times out
            if reply.type in (M.RESPONSE, M.ERROR):
                reply.txid, reply.channel_id = msg.txid, msg.channel_id
            self.dispatch(reply)

    def writer_drain(self) -> None:
        """Take what the gRPC writer would have sent (so the backlog reflects one dispatch only)."""
        while not self._out.empty():
            msg = self._out.get_nowait()
            if isinstance(msg, M):
                self._taken(msg)


def parse(raw: Optional[bytes]) -> Optional[M]:
    if raw is None:
        return None
    try:
        return M.FromString(raw)
    except DecodeError:
        return None  # gRPC would have failed the stream before the handler saw it


def _error_text(m: M) -> Optional[str]:
    """The error text a reply carries to the client, if it is one."""
    if m.type == M.ERROR:
        return _text(m.payload)
    if m.type == M.COMPLETED:
        try:
            resp = proposal_response_pb2.Response.FromString(m.payload)
        except DecodeError:
            raise Finding("COMPLETED reply whose payload is not a Response") from None
        return resp.message if resp.status >= 400 else None
    return None


def one_input(data: bytes) -> None:
    """The fuzz target."""
    cc = StubExerciser()
    inputs = frames.split(data)
    h = FuzzHandler(cc, inputs)
    for raw in inputs:
        msg = parse(raw)
        if msg is None:
            continue
        if not h.dispatch(msg):
            break
        h.writer_drain()
    if cc.unexpected:
        raise cc.unexpected[0]
    if h.busy():
        raise Finding("a transaction was left unanswered")
    answered = collections.Counter((m.channel_id, m.txid) for m in h.sent if m.type in (M.COMPLETED, M.ERROR))
    for key, n in answered.items():
        if n > h.asked[key]:
            raise Finding(f"transaction {key[1][:8]!r} answered {n} times")
    for m in h.sent:
        text = _error_text(m)
        if text is not None and len(text) > ERROR_TEXT_BOUND:
            raise Finding(f"{M.Type.Name(m.type)} reply with a {len(text)}-character error text")


def _tx(txid: str, *args: bytes, mtype: int = M.TRANSACTION, proposal: bool = False) -> bytes:
    msg = M(type=mtype, txid=txid, channel_id="ch",
            payload=chaincode_pb2.ChaincodeInput(args=list(args)).SerializeToString())
    if proposal:
        msg.proposal.CopyFrom(proposal_pb2.SignedProposal(proposal_bytes=b"\x0a\x00"))
    return msg.SerializeToString()


def _ok(payload: bytes = b"") -> bytes:
    return M(type=M.RESPONSE, payload=payload).SerializeToString()


def seeds() -> list[bytes]:
    """Inputs that reach each path: the handshake, then transactions and the peer's answers."""
    hello = [M(type=M.REGISTERED).SerializeToString(), M(type=M.READY).SerializeToString()]
    kv = shim.QueryResultBytes(resultBytes=b"\x0a\x01k\x12\x01v")
    page = shim.QueryResponse(results=[kv], has_more=True, id="q1").SerializeToString()
    last = shim.QueryResponse(results=[kv], has_more=False, id="q1").SerializeToString()
    done = M(type=M.COMPLETED, payload=proposal_response_pb2.Response(status=200).SerializeToString())
    out = [
        hello + [_tx("t1", b"get", b"k"), _ok(b"v")],
        hello + [_tx("t1", b"put", b"k", b"", b"v"), _ok(), _tx("t2", b"del", b"k"), _ok()],
        hello + [_tx("t1", b"range", b"a", b"z"), _ok(page), _ok(last)],
        hello + [_tx("t1", b"first", b"a", b"z"), _ok(page), _ok()],
        hello + [_tx("t1", b"page", b"a", b"z", b"xx"), _ok(last)],
        hello + [_tx("t1", b"hist", b"k"), _ok(last)],
        hello + [_tx("t1", b"priv", b"c", b"k", b"v"), _ok(), _ok(b"v"), _ok(b"h")],
        hello + [_tx("t1", b"sbe", b"k", b"", b"p"), _ok(), _ok()],
        hello + [_tx("t1", b"call", b"other", b"", b"x"), _ok(done.SerializeToString())],
        hello + [_tx("t1", b"facts", proposal=True), _tx("t2", b"event", b"e", b"", b"p")],
        hello + [_tx("t1", b"fail", b"x" * 2000), _tx("i1", b"get", b"k", mtype=M.INIT), _ok()],
        hello + [_tx("t1", b"get", b"k"), M(type=M.ERROR, payload=b"no").SerializeToString()],
        hello + [_tx("t1", b"get", b"k"), _tx("t1", b"get", b"k"), _ok(), _ok()],
        hello + [M(type=M.KEEPALIVE).SerializeToString(), M(type=999, txid="u").SerializeToString(),
                 M(type=M.REGISTER, txid="r").SerializeToString()],
        [_tx("early", b"get", b"k")],
    ]
    return [frames.join(s) for s in out]
