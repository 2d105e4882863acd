"""Chaincode event stream from the Gateway: an iterator that can be closed and resumed."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import grpc
from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2
from google.protobuf.message import DecodeError

from .errors import EventsError, GatewayError

if TYPE_CHECKING:
    from .gateway import Gateway

log = logging.getLogger(__name__)

RECONNECT_MIN_DELAY = 0.2
RECONNECT_MAX_DELAY = 5.0


@dataclass(frozen=True)
class ChaincodeEvent:
    """An event set by a valid transaction, with where it was committed."""

    block_number: int
    tx_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


def start_position(start_block: int | None) -> ab_pb2.SeekPosition:
    """``specified`` for a block number, else ``next_commit`` (the official clients' default)."""
    if start_block is None:
        return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))


class ChaincodeEventStream:
    """Iterator over :class:`ChaincodeEvent`; ``close()`` (any thread) ends the iteration.

    ``checkpoint`` is ``(block_number, tx_id)`` of the last event handed out: pass them as
    ``start_block``/``after_tx_id`` to resume later without repeats. With ``reconnect`` the
    stream does so itself when the peer becomes unavailable.

    Without ``start_block`` ("from the next commit") and with ``reconnect``, the stream reads the
    channel height (qscc ``GetChainInfo``) when it is created and starts at that block, so a
    reconnect before the first event resumes there and misses nothing committed meanwhile
    (``start_block`` then holds that height). If the height cannot be read the request asks for
    ``next_commit`` (a warning is logged): a reconnect before the first event may then skip events.
    """

    def __init__(self, gateway: "Gateway", channel_id: str, chaincode_id: str, start_block: int | None = None,
                 after_tx_id: str | None = None, timeout: float | None = None, reconnect: bool = True) -> None:
        self._gw = gateway
        self.channel_id = channel_id
        self.chaincode_id = chaincode_id
        self._start_block = start_block
        self._after_tx_id = after_tx_id or ""
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._reconnect = reconnect
        self._buffer: deque[ChaincodeEvent] = deque()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._call: grpc.Call | None = None
        self.checkpoint: tuple[int, str] | None = None
        if start_block is None and reconnect:
            self._start_block = self._chain_height()

    @property
    def start_block(self) -> int | None:
        """The block the stream started from (``None``: the peer's next commit)."""
        return self._start_block

    def _chain_height(self) -> int | None:
        """The channel height now (the number of the next block), or ``None`` if unreadable."""
        from .network import Network  # network imports this module
        from .qscc import Qscc

        remaining = self._remaining()
        timeout = self._gw.timeouts.evaluate
        if remaining is not None:
            timeout = max(0.05, min(remaining, timeout))
        try:
            return int(Qscc(Network(self._gw, self.channel_id), timeout).chain_info()["height"])
        except (GatewayError, DecodeError, ValueError) as err:
            log.warning("chain height of %s not readable (%s): events start at the next commit and a "
                        "reconnect before the first event may skip events", self.channel_id,
                        getattr(err, "code", None) or type(err).__name__)
            return None

    # -- request ----------------------------------------------------------------------------
    def _signed_request(self) -> gateway_pb2.SignedChaincodeEventsRequest:
        if self.checkpoint is not None:
            block, after = self.checkpoint
        else:
            block, after = self._start_block, self._after_tx_id
        ident = self._gw.identity
        request = gateway_pb2.ChaincodeEventsRequest(
            channel_id=self.channel_id, chaincode_id=self.chaincode_id, identity=ident.serialized(),
            start_position=start_position(block), after_transaction_id=after).SerializeToString()
        return gateway_pb2.SignedChaincodeEventsRequest(request=request, signature=ident.sign(request))

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _open(self) -> grpc.Call | None:
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            return None
        call = self._gw.stub.ChaincodeEvents(self._signed_request(), timeout=remaining)
        with self._lock:
            if self._closed.is_set():
                call.cancel()
                return None
            self._call = call
        return call

    # -- iteration --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[ChaincodeEvent]:
        return self

    def __next__(self) -> ChaincodeEvent:
        delay = RECONNECT_MIN_DELAY
        while True:
            if self._buffer:
                ev = self._buffer.popleft()
                self.checkpoint = (ev.block_number, ev.tx_id)
                return ev
            if self._closed.is_set():
                raise StopIteration
            call = self._call or self._open()
            if call is None:
                self.close()
                raise StopIteration
            try:
                resp = next(call)
            except StopIteration:
                log.info("chaincode event stream for %s ended by the peer", self.chaincode_id)
                self.close()
                raise
            except grpc.RpcError as err:
                self._call = None
                if self._closed.is_set() or self._gw.closed:
                    self.close()
                    raise StopIteration from None
                remaining = self._remaining()
                if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and remaining is not None and remaining <= 0.05:
                    self.close()
                    raise StopIteration from None
                if self._reconnect and err.code() == grpc.StatusCode.UNAVAILABLE:
                    log.warning("chaincode event stream for %s unavailable (%s); reconnecting in %.1fs",
                                self.chaincode_id, err.details(), delay)
                    if self._closed.wait(delay):
                        raise StopIteration from None
                    delay = min(delay * 2, RECONNECT_MAX_DELAY)
                    continue
                self.close()
                raise EventsError.from_rpc_error(err, endpoint=self._gw.endpoint) from None
            delay = RECONNECT_MIN_DELAY
            for e in resp.events:
                self._buffer.append(ChaincodeEvent(resp.block_number, e.tx_id, e.chaincode_id, e.event_name, e.payload))

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the stream; a thread blocked in iteration gets ``StopIteration``."""
        with self._lock:
            self._closed.set()
            call, self._call = self._call, None
        self._buffer.clear()
        if call is not None:
            call.cancel()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> "ChaincodeEventStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
