"""Per-stream handler: registration state machine, tx dispatch, reply routing, one writer, drain, limits."""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from concurrent.futures import Executor
from typing import Any, Callable, Iterator, Optional

from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, chaincode_shim_pb2 as shim, proposal_response_pb2

from .echo import clip, error_text, traceback_text
from .errors import PeerError, PeerTimeout, ShimError
from .limits import StreamLimits
from .stub import ERROR_STATUS, ChaincodeStub

log = logging.getLogger(__name__)
M = shim.ChaincodeMessage
_STOP = object()
_NO_ANSWER = object()
CREATED, ESTABLISHED, READY = "created", "established", "ready"  # the Go shim's handler states
SHUTTING_DOWN = b"chaincode server shutting down"
_TX_TYPES = (M.INIT, M.TRANSACTION)
_KNOWN_TYPES = frozenset(M.Type.values())
_ERROR_THRESHOLD = 400  # Fabric: a Response status from 400 up is an error
_MESSAGE_OVERHEAD = 64  # bytes counted per queued message besides its encoding
TxKey = tuple[str, str]
Outcome = tuple[int, bytes, Optional[chaincode_event_pb2.ChaincodeEvent]]


def short_txid(tx_id: str) -> str:
    """The first 8 characters of a transaction id, as the Go shim logs it."""
    return tx_id[:8]


def function_label(args: list[bytes]) -> str:
    """The function name (first argument) for logs: at most 64 characters, never the parameters."""
    return args[0][:64].decode("utf-8", "replace") if args else ""


def type_name(mtype: int) -> str:
    """A message type's name; the number for a type this shim does not know."""
    return M.Type.Name(mtype) if mtype in _KNOWN_TYPES else str(mtype)


class Handler:
    """Plays the chaincode side of one Connect stream.

    States follow the Go shim: ``created`` accepts REGISTERED, ``established`` accepts READY,
    ``ready`` accepts INIT/TRANSACTION and the replies to stub requests. Any other known message is
    answered with ERROR and ends the stream; a message of a type the protocol does not define is
    answered with ERROR and the stream goes on. KEEPALIVE is echoed in every state.

    ``limits`` bound what the stream may hold (see :class:`fabshim.limits.StreamLimits`);
    ``cancel`` ends the underlying RPC (the server passes the gRPC context's), used when the
    stream is dropped.
    """

    def __init__(self, chaincode: Any, chaincode_id: str, executor: Executor,
                 limits: StreamLimits = StreamLimits(), cancel: Optional[Callable[[], Any]] = None) -> None:
        self._cc = chaincode
        self._cc_id = chaincode_id
        self._pool = executor
        self._limits = limits
        self._cancel = cancel
        self._out: "queue.Queue[Any]" = queue.Queue()
        self._backlog = 0  # bytes queued for the peer, not yet taken by gRPC
        self._backlog_lock = threading.Lock()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queued: dict[TxKey, M] = {}    # accepted, not yet started on a worker
        self._turns: "collections.deque[TxKey]" = collections.deque()  # queued, not yet handed to the pool
        self._handed = 0                     # handed to the pool and not yet returned from it
        self._running: dict[TxKey, M] = {}   # started, not yet answered
        self._waiting: dict[TxKey, "queue.Queue[Optional[M]]"] = {}
        self._draining = False
        self._ended = False
        self.state = CREATED
        self.last_active = time.monotonic()
        self.closed = threading.Event()

    # ---- writer side
    def send(self, msg: M) -> None:
        with self._backlog_lock:
            self._backlog += msg.ByteSize() + _MESSAGE_OVERHEAD
            over = self._backlog > self._limits.max_backlog
        if over:
            self.drop(f"the peer left more than {self._limits.max_backlog} bytes unread")
            return
        self._out.put(msg)

    def _taken(self, msg: M) -> None:
        """gRPC took ``msg`` to write it: it no longer counts against the backlog."""
        with self._backlog_lock:
            self._backlog -= msg.ByteSize() + _MESSAGE_OVERHEAD

    @property
    def ready(self) -> bool:
        """True once the handshake is done (REGISTERED, then READY)."""
        return self.state == READY

    def busy(self) -> bool:
        """True while a transaction of this stream is queued or running."""
        with self._lock:
            return bool(self._queued or self._running)

    def close(self) -> None:
        """End the stream (the peer sees it complete and reconnects when it next needs us)."""
        self._out.put(_STOP)

    def drop(self, reason: str) -> None:
        """End the stream now, even if the peer reads nothing: its RPC is cancelled."""
        if not self._ended:
            log.warning("dropping a stream: %s", reason)
        self._ended = True
        self._out.put(_STOP)
        if self._cancel is not None:
            self._cancel()

    def stream(self, requests: Iterator[M]) -> Iterator[M]:
        """The response iterator given to grpc: REGISTER first, then whatever is queued."""
        reg = chaincode_pb2.ChaincodeID(name=self._cc_id)
        self.send(M(type=M.REGISTER, payload=reg.SerializeToString()))
        threading.Thread(target=self._read, args=(requests,), daemon=True, name="fabshim-reader").start()
        while True:
            msg = self._out.get()
            if msg is _STOP:
                return
            self._taken(msg)
            yield msg

    # ---- drain (server stop)
    def drain(self) -> None:
        """Refuse new transactions; answer the queued, not yet started ones with ERROR now."""
        with self._lock:
            self._draining = True
            queued = list(self._queued.values())
            self._queued.clear()
            self._turns.clear()
            self._idle.notify_all()
        for msg in queued:
            self._reply(msg, M.ERROR, SHUTTING_DOWN)

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no transaction runs (or ``deadline``, a monotonic time); True if idle."""
        with self._idle:
            return self._idle.wait_for(lambda: not (self._queued or self._running),
                                       max(0.0, deadline - time.monotonic()))

    def abandon_running(self) -> None:
        """Answer transactions still running at the end of the drain with ERROR (their late result is dropped)."""
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
            self._idle.notify_all()
        for msg in running:
            log.warning("transaction %s still running at shutdown: answered with ERROR", short_txid(msg.txid))
            self._reply(msg, M.ERROR, SHUTTING_DOWN)

    # ---- reader side
    def _read(self, requests: Iterator[M]) -> None:
        try:
            for msg in requests:
                if not self.dispatch(msg):
                    break
        except Exception as exc:  # stream broke (cancel, shutdown)
            log.info("stream ended: %s", type(exc).__name__)
        finally:
            self.closed.set()
            with self._lock:
                waiting = list(self._waiting.values())
            for q in waiting:
                q.put(None)
            self._out.put(_STOP)

    def dispatch(self, msg: M) -> bool:
        """Handle one message from the peer; False once the stream must end."""
        if self._ended:
            return False
        self.last_active = time.monotonic()
        if msg.type not in _KNOWN_TYPES:
            self._unknown_type(msg)
        elif msg.type == M.KEEPALIVE:
            self.send(msg)  # echoed back, as the Go shim does
        elif self.state == CREATED and msg.type == M.REGISTERED:
            self.state = ESTABLISHED
        elif self.state == ESTABLISHED and msg.type == M.READY:
            self.state = READY
        elif self.state == READY and msg.type in _TX_TYPES:
            self._accept(msg)
        elif self.state == READY and msg.type in (M.RESPONSE, M.ERROR):
            self._route_reply(msg)
        else:
            self._protocol_error(msg)
        return not self._ended

    def _unknown_type(self, msg: M) -> None:
        text = f"[{short_txid(msg.txid)}] chaincode cannot handle message of unknown type {msg.type}"
        log.warning("%s; answered with ERROR", text)
        self._reply(msg, M.ERROR, text.encode())

    def _protocol_error(self, msg: M) -> None:
        """Go shim: a message the current state cannot handle is answered with ERROR and ends the chat."""
        text = f"[{short_txid(msg.txid)}] chaincode cannot handle message ({type_name(msg.type)}) " \
               f"while in state: {self.state}"
        log.warning("%s; ending the stream", text)
        self._reply(msg, M.ERROR, text.encode())
        self._ended = True
        self.close()

    def _route_reply(self, msg: M) -> None:
        with self._lock:
            q = self._waiting.get((msg.channel_id, msg.txid))
        if q is None:
            log.warning("reply for unknown transaction %s dropped", short_txid(msg.txid))
        else:
            q.put(msg)

    def _accept(self, msg: M) -> None:
        key = (msg.channel_id, msg.txid)
        with self._lock:
            refusal = self._refusal(key)
            if refusal is None:
                self._queued[key] = msg
                self._turns.append(key)
                turns = self._take_turns()
        if refusal is not None:
            self._reply(msg, M.ERROR, refusal)
            return
        self._hand(turns)

    def _refusal(self, key: TxKey) -> Optional[bytes]:
        """Why a new transaction is refused (caller holds the lock); None to accept it."""
        if self._draining:
            return SHUTTING_DOWN
        if key in self._queued or key in self._running:
            log.warning("duplicate transaction %s refused", short_txid(key[1]))
            return f"duplicate transaction ID {clip(key[1])}".encode()
        limit = self._limits.max_inflight
        if len(self._queued) + len(self._running) >= limit:
            log.warning("transaction %s refused: %d in flight on this stream", short_txid(key[1]), limit)
            return f"too many transactions in flight on this stream (limit {limit})".encode()
        return None

    def _take_turns(self) -> list[TxKey]:
        """Queued transactions that may go to the pool now (caller holds the lock and hands them)."""
        turns = []
        while self._turns and self._handed < self._limits.max_running:
            key = self._turns.popleft()
            if key in self._queued:
                self._handed += 1
                turns.append(key)
        return turns

    def _hand(self, turns: list[TxKey]) -> None:
        for key in turns:
            try:
                self._pool.submit(self._run_tx, key)
            except RuntimeError:  # the worker pool is already shut down
                with self._lock:
                    self._handed -= 1
                    msg = self._queued.pop(key, None)
                    self._idle.notify_all()
                if msg is not None:
                    self._reply(msg, M.ERROR, SHUTTING_DOWN)

    def _reply(self, req: M, mtype: int, payload: bytes,
               event: Optional[chaincode_event_pb2.ChaincodeEvent] = None) -> None:
        out = M(type=mtype, payload=payload, txid=req.txid, channel_id=req.channel_id)
        if event is not None:
            out.chaincode_event.CopyFrom(event)
        self.send(out)

    # ---- transactions
    def _start(self, key: TxKey) -> Optional[M]:
        """Move a queued transaction to running; None if the drain already answered it."""
        with self._lock:
            msg = self._queued.pop(key, None)
            if msg is not None:
                self._running[key] = msg
            return msg

    def _finish(self, key: TxKey) -> Optional[M]:
        """Mark a transaction answered; None if it was already answered (drain, timeout)."""
        with self._lock:
            msg = self._running.pop(key, None)
            self._idle.notify_all()
            return msg

    def _run_tx(self, key: TxKey) -> None:
        try:
            msg = self._start(key)
            if msg is None:
                return
            try:
                outcome = self._execute(msg)
            finally:
                owned = self._finish(key)
            if owned is not None:
                self._reply(msg, *outcome)
        finally:
            with self._lock:
                self._handed -= 1
                turns = self._take_turns()
            self._hand(turns)

    def _execute(self, msg: M) -> Outcome:
        """Run Init/Invoke; an exception becomes ERROR (logged without its message: it may hold payload)."""
        inp = chaincode_pb2.ChaincodeInput()
        try:
            inp.ParseFromString(msg.payload)
            stub = ChaincodeStub(self, msg.channel_id, msg.txid, inp, msg.proposal if msg.HasField("proposal") else None)
            fn = self._cc.init if msg.type == M.INIT else self._cc.invoke
            res = fn(stub)
            status = int(res.status)
            message = res.message or ""
            if status >= _ERROR_THRESHOLD:
                message = error_text(message)
            if msg.type == M.INIT and status >= ERROR_STATUS:
                # Go shim: a failed Init answers ERROR with the message (a failed Invoke stays COMPLETED)
                return M.ERROR, message.encode("utf-8"), stub._event
            resp = proposal_response_pb2.Response(status=status, message=message, payload=res.payload or b"")
            return M.COMPLETED, resp.SerializeToString(), stub._event
        except Exception as exc:
            name = function_label(list(inp.args))
            log.error("transaction %s (function %r) failed: %s", short_txid(msg.txid), name, type(exc).__name__)
            log.debug("transaction %s (function %r): %s", short_txid(msg.txid), name, traceback_text(exc))
            return M.ERROR, f"{type(exc).__name__}: {clip(str(exc))}".encode(), None

    def _give_up(self, key: TxKey, text: str) -> None:
        """Answer a running transaction with ERROR now; whatever it returns later is dropped."""
        msg = self._finish(key)
        if msg is not None:
            log.warning("transaction %s: %s; answered with ERROR", short_txid(key[1]), text)
            self._reply(msg, M.ERROR, text.encode())

    def request(self, channel_id: str, tx_id: str, mtype: int, payload: bytes) -> bytes:
        """Send a stub request and wait for its RESPONSE; ERROR raises PeerError.

        No answer within the request timeout: the transaction is answered with ERROR and
        PeerTimeout raised; so is every later request of a transaction already answered.
        """
        key = (channel_id, tx_id)
        q: "queue.Queue[Optional[M]]" = queue.Queue()
        with self._lock:
            if key not in self._running:
                raise ShimError(f"transaction {short_txid(tx_id)} was already answered")
            if key in self._waiting:
                raise ShimError(f"concurrent request for transaction {short_txid(tx_id)}")
            self._waiting[key] = q
        try:
            if self.closed.is_set():
                raise ShimError("stream closed")
            self.send(M(type=mtype, payload=payload, txid=tx_id, channel_id=channel_id))
            try:
                reply: Any = q.get(timeout=self._limits.request_timeout)
            except queue.Empty:
                reply = _NO_ANSWER
        finally:
            with self._lock:
                self._waiting.pop(key, None)
        if reply is _NO_ANSWER:
            text = f"no answer from the peer to {type_name(mtype)} within {self._limits.request_timeout:g}s"
            self._give_up(key, text)
            raise PeerTimeout(text)
        if reply is None:
            raise ShimError("stream closed while waiting for the peer")
        if reply.type == M.ERROR:
            raise PeerError(clip(reply.payload.decode("utf-8", "replace")))
        return reply.payload
