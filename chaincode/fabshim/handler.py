"""Per-stream handler: registration, tx dispatch, reply routing, one writer."""
from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Optional

from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2 as shim, proposal_response_pb2

from .errors import PeerError, ShimError
from .stub import ERROR_STATUS, ChaincodeStub

log = logging.getLogger(__name__)
M = shim.ChaincodeMessage
_STOP = object()


class Handler:
    """Plays the chaincode side of one Connect stream."""

    def __init__(self, chaincode: Any, chaincode_id: str, executor: ThreadPoolExecutor) -> None:
        self._cc = chaincode
        self._cc_id = chaincode_id
        self._pool = executor
        self._out: "queue.Queue[Any]" = queue.Queue()
        self._lock = threading.Lock()
        self._active: set[tuple[str, str]] = set()
        self._waiting: dict[tuple[str, str], "queue.Queue[M]"] = {}
        self.state = "created"
        self.closed = threading.Event()

    # ---- writer side
    def send(self, msg: M) -> None:
        self._out.put(msg)

    def busy(self) -> bool:
        """True while a transaction of this stream is still running."""
        with self._lock:
            return bool(self._active)

    def close(self) -> None:
        """End the stream (the peer sees it complete and reconnects when it next needs us)."""
        self._out.put(_STOP)

    def stream(self, requests: Iterator[M]) -> Iterator[M]:
        """The response iterator given to grpc: REGISTER first, then whatever is queued."""
        reg = chaincode_pb2.ChaincodeID(name=self._cc_id)
        self.send(M(type=M.REGISTER, payload=reg.SerializeToString()))
        threading.Thread(target=self._read, args=(requests,), daemon=True, name="fabshim-reader").start()
        while True:
            msg = self._out.get()
            if msg is _STOP:
                return
            yield msg

    # ---- reader side
    def _read(self, requests: Iterator[M]) -> None:
        try:
            for msg in requests:
                self._dispatch(msg)
        except Exception as exc:  # stream broke (cancel, shutdown)
            log.info("stream ended: %s", type(exc).__name__)
        finally:
            self.closed.set()
            with self._lock:
                waiting = list(self._waiting.values())
            for q in waiting:
                q.put(None)
            self._out.put(_STOP)

    def _dispatch(self, msg: M) -> None:
        t = msg.type
        if t == M.KEEPALIVE:
            self.send(msg)  # echoed back, as the Go shim does
            return
        if t == M.REGISTERED:
            self.state = "established"
            return
        if t == M.READY:
            self.state = "ready"
            return
        if t in (M.INIT, M.TRANSACTION):
            key = (msg.channel_id, msg.txid)
            with self._lock:
                dup = key in self._active
                if not dup:
                    self._active.add(key)
            if dup:
                log.warning("duplicate transaction %s refused", msg.txid)
                self._reply(msg, M.ERROR, f"duplicate transaction ID {msg.txid}".encode())
                return
            self._pool.submit(self._run_tx, msg)
            return
        if t in (M.RESPONSE, M.ERROR):
            with self._lock:
                q = self._waiting.get((msg.channel_id, msg.txid))
            if q is None:
                log.warning("reply for unknown transaction %s dropped", msg.txid)
            else:
                q.put(msg)
            return
        log.warning("unexpected message type %s", M.Type.Name(t))

    def _reply(self, req: M, mtype: int, payload: bytes, event=None) -> None:
        out = M(type=mtype, payload=payload, txid=req.txid, channel_id=req.channel_id)
        if event is not None:
            out.chaincode_event.CopyFrom(event)
        self.send(out)

    # ---- transactions
    def _run_tx(self, msg: M) -> None:
        key = (msg.channel_id, msg.txid)
        try:
            inp = chaincode_pb2.ChaincodeInput()
            inp.ParseFromString(msg.payload)
            stub = ChaincodeStub(self, msg.channel_id, msg.txid, inp, msg.proposal if msg.HasField("proposal") else None)
            fn = self._cc.init if msg.type == M.INIT else self._cc.invoke
            res = fn(stub)
            status = int(res.status)
            if msg.type == M.INIT and status >= ERROR_STATUS:
                # Go shim: a failed Init answers ERROR with the message (a failed Invoke stays COMPLETED)
                self._reply(msg, M.ERROR, (res.message or "").encode("utf-8"), stub._event)
                return
            resp = proposal_response_pb2.Response(status=status, message=res.message or "",
                                                  payload=res.payload or b"")
            self._reply(msg, M.COMPLETED, resp.SerializeToString(), stub._event)
        except Exception as exc:
            log.error("transaction %s failed: %s", msg.txid, type(exc).__name__, exc_info=True)
            self._reply(msg, M.ERROR, f"{type(exc).__name__}: {exc}".encode())
        finally:
            with self._lock:
                self._active.discard(key)

    def request(self, channel_id: str, tx_id: str, mtype: int, payload: bytes) -> bytes:
        """Send a stub request and wait for its RESPONSE; ERROR raises PeerError."""
        key = (channel_id, tx_id)
        q: "queue.Queue[Optional[M]]" = queue.Queue()
        with self._lock:
            if key in self._waiting:
                raise ShimError(f"concurrent request for transaction {tx_id}")
            self._waiting[key] = q
        try:
            if self.closed.is_set():
                raise ShimError("stream closed")
            self.send(M(type=mtype, payload=payload, txid=tx_id, channel_id=channel_id))
            reply = q.get()
        finally:
            with self._lock:
                self._waiting.pop(key, None)
        if reply is None:
            raise ShimError("stream closed while waiting for the peer")
        if reply.type == M.ERROR:
            raise PeerError(reply.payload.decode("utf-8", "replace"))
        return reply.payload
