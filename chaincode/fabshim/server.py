"""CCaaS gRPC server: the peer dials in and calls Chaincode/Connect."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Optional

import grpc
from fabric_protos.peer import chaincode_shim_pb2_grpc

from .handler import Handler
from .limits import (DEFAULT_MAX_BACKLOG, DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_STREAMS, DEFAULT_MAX_WORKERS,
                     DEFAULT_REQUEST_TIMEOUT_S, StreamLimits)
from .streams import StreamTable

log = logging.getLogger(__name__)
MAX_MSG = 100 * 1024 * 1024
_REPLY_MARGIN_S = 1.0  # extra gRPC grace after the drain deadline, to deliver the final replies
RPC_HEADROOM = 16  # RPC threads beyond max_streams: a new stream starts while the one it replaces ends


@dataclass
class TLSConfig:
    """Server TLS; a client CA file turns on required client authentication."""
    cert_file: str
    key_file: str
    client_ca_file: Optional[str] = None


def server_options(keepalive_ms: int = 60_000) -> list[tuple[str, int]]:
    """The defaults: 100 MiB messages both ways, keepalive that accepts the peer's pings."""
    return [
        ("grpc.max_send_message_length", MAX_MSG),
        ("grpc.max_receive_message_length", MAX_MSG),
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def merge_options(defaults: list[tuple[str, Any]], extra: Optional[list[tuple[str, Any]]]) -> list[tuple[str, Any]]:
    """``defaults`` with ``extra`` applied on top: same-named options replaced, new ones appended."""
    merged = dict(defaults)
    merged.update(dict(extra or []))
    return list(merged.items())


class _Servicer(chaincode_shim_pb2_grpc.ChaincodeServicer):
    def __init__(self, owner: "ChaincodeServer") -> None:
        self._o = owner

    def Connect(self, request_iterator, context):  # noqa: N802
        o = self._o
        h = Handler(o.chaincode, o.chaincode_id, o._tx_pool, o.limits, cancel=context.cancel)
        with o._lock:
            if o._draining:
                log.info("peer %s refused: draining", context.peer())
                return
            dropped = o._streams.admit(h)
        log.info("peer connected: %s", context.peer())
        for old in dropped:
            old.drop(f"{o._streams.cap} streams open (max_streams): least recently active one dropped")
        try:
            yield from h.stream(request_iterator)
        finally:
            o._streams.remove(h)


class ChaincodeServer:
    """Serves one chaincode to the peers (one Connect stream each), whatever any one stream does.

    ``options`` are gRPC server options merged over :func:`server_options` (a caller's value
    replaces the default of the same name; the other defaults stay).

    Bounds: ``max_workers`` transactions run at once over all streams; ``max_streams`` streams
    are open at once (one more is always admitted, and the stream that never finished its
    handshake, else the least recently active idle one, else the least recently active one is
    dropped); per stream, ``max_inflight_per_stream`` transactions accepted and not answered
    (one more is answered with ERROR at once), of which ``max_running_per_stream`` (default a
    quarter of ``max_workers``) hold a worker; ``request_timeout`` seconds for the peer to answer
    a transaction's GET_STATE, PUT_STATE, ... (then the transaction is answered with ERROR and its
    worker let go); ``max_backlog`` bytes the peer has not read (then its stream is dropped).
    """

    def __init__(self, chaincode: Any, address: str, chaincode_id: str, tls: Optional[TLSConfig] = None,
                 max_workers: int = DEFAULT_MAX_WORKERS, options: Optional[list] = None, *,
                 max_streams: int = DEFAULT_MAX_STREAMS, max_inflight_per_stream: int = DEFAULT_MAX_INFLIGHT,
                 max_running_per_stream: Optional[int] = None,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S, max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
        self.chaincode, self.address, self.chaincode_id, self.tls = chaincode, address, chaincode_id, tls
        running = max_running_per_stream if max_running_per_stream is not None else max(1, max_workers // 4)
        self.limits = StreamLimits(max_inflight=max_inflight_per_stream, max_running=running,
                                   request_timeout=request_timeout, max_backlog=max_backlog)
        self._streams = StreamTable(max_streams)
        self._tx_pool = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fabshim-tx")
        self.options = merge_options(server_options(), options)
        rpc_threads = max_streams + RPC_HEADROOM  # each open stream holds one RPC thread
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=rpc_threads, thread_name_prefix="fabshim-rpc"),
                                   options=self.options, maximum_concurrent_rpcs=2 * rpc_threads)
        chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(_Servicer(self), self._server)
        self._lock = threading.Lock()
        self._draining = False
        self.port = 0

    @property
    def stream_count(self) -> int:
        """How many Connect streams are open."""
        return len(self._streams)

    def start(self) -> None:
        if self.tls:
            with open(self.tls.key_file, "rb") as f:
                key = f.read()
            with open(self.tls.cert_file, "rb") as f:
                cert = f.read()
            ca = None
            if self.tls.client_ca_file:
                with open(self.tls.client_ca_file, "rb") as f:
                    ca = f.read()
            creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                                require_client_auth=ca is not None)
            self.port = self._server.add_secure_port(self.address, creds)
        else:
            self.port = self._server.add_insecure_port(self.address)
        if not self.port:
            raise RuntimeError(f"cannot listen on {self.address}")
        self._server.start()
        log.info("chaincode server %s listening on port %d (tls=%s)", self.chaincode_id, self.port, bool(self.tls))

    def stop(self, grace: Optional[float] = 5.0) -> None:
        """Drain, then end every stream.

        New streams and new transactions are refused (transactions with an ERROR 'chaincode
        server shutting down'), queued ones not yet started are answered the same way at once,
        running ones may finish within ``grace`` seconds (those still running then get the ERROR
        too), then the streams end. A peer's Connect stream never ends by itself, so waiting out
        the gRPC grace alone would always take the full ``grace``.
        """
        deadline = time.monotonic() + (grace or 0)
        with self._lock:
            self._draining = True
            handlers = self._streams.streams()
        for h in handlers:
            h.drain()
        # gRPC cancels the streams when its grace ends: leave room to send the last ERRORs first
        stopped = self._server.stop(grace + _REPLY_MARGIN_S if grace else grace)
        for h in handlers:
            h.wait_idle(deadline)
        for h in handlers:
            h.abandon_running()
            h.close()
        stopped.wait()
        self._tx_pool.shutdown(wait=False, cancel_futures=True)

    def wait(self) -> None:
        self._server.wait_for_termination()


def run_from_env(chaincode: Any) -> None:
    """Serve using CHAINCODE_* environment variables until SIGTERM/SIGINT (the default bounds)."""
    cc_id = os.environ["CHAINCODE_ID"]
    addr = os.environ.get("CHAINCODE_SERVER_ADDRESS", "0.0.0.0:9999")
    cert, key = os.environ.get("CHAINCODE_TLS_CERT"), os.environ.get("CHAINCODE_TLS_KEY")
    tls = None
    if cert and key:
        tls = TLSConfig(cert, key, os.environ.get("CHAINCODE_TLS_CLIENT_CACERT") or None)
    else:
        log.warning("CHAINCODE_TLS_CERT/KEY not set: serving without TLS")
    srv = ChaincodeServer(chaincode, addr, cc_id, tls)
    srv.start()
    done = threading.Event()

    def _sig(signum, _frame):
        log.info("signal %d: draining", signum)
        done.set()

    signal.signal(signal.SIGTERM, _sig)
    signal.signal(signal.SIGINT, _sig)
    done.wait()
    srv.stop(10.0)
