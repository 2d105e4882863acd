"""Node-to-node payload exchange: each org's node serves its artifacts by SHA-256 to the other members'
nodes over mutual TLS with certificates of the orgs' TLS CAs.

Used for jobs whose models are larger than ``spec.endorsed_max_params``: update payloads (masked in
secure mode) never enter a transaction; the ledger keeps their hashes and each node fetches the
others' bytes here, checks them against those hashes and computes the aggregate itself. The same
service lets a node that was down fetch a finalized model by its hash.

The server streams a stored file as it is; the fetcher verifies the hash (a corrupted store, a
hostile node or a swapped file is caught there). A client must present a certificate of a member
org's TLS CA; a server must present one of the org the fetcher expects (its TLS CA is the only root
the fetcher trusts for that call). Requests are one 64-hex digest; everything else is refused.
"""
from __future__ import annotations

import hashlib
import logging
import re
from concurrent import futures
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import grpc

from ..artifacts import ArtifactStore

log = logging.getLogger("fedfabric.node.exchange")

SERVICE = "fedfabric.exchange.v1.Exchange"
FETCH = f"/{SERVICE}/Fetch"
CHUNK = 1 << 20
MAX_MESSAGE = 4 << 20
DIGEST_RE = re.compile(rb"^[0-9a-f]{64}$")
OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
FETCH_TIMEOUT_S = 60.0   # a whole fetch, the largest model included


class FetchError(Exception):
    """The bytes could not be had from that node (unreachable, refused, not there)."""


class CorruptBlob(FetchError):
    """The node served bytes that do not hash to what the ledger recorded."""


@dataclass(frozen=True)
class NodeTls:
    """This node's TLS identity (issued by its org's TLS CA) and the member orgs' TLS CA roots."""

    cert: bytes
    key: bytes
    member_roots: dict[str, bytes]   # MSP id -> that org's TLS CA certificate (PEM)


def _identity(request: bytes) -> bytes:
    return request


class ExchangeServer:
    """Serves ``store``'s blobs on ``bind`` (``host:port``) to member nodes; ``on_sent(n)`` hears of every
    ``n`` bytes sent (the node's metrics)."""

    def __init__(self, store: ArtifactStore, bind: str, tls: NodeTls, workers: int = 4,
                 on_sent: Optional[Callable[[int], None]] = None) -> None:
        self.store, self.bind = store, bind
        self.on_sent = on_sent
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=OPTIONS,
                                   maximum_concurrent_rpcs=4 * workers)
        handler = grpc.method_handlers_generic_handler(SERVICE, {
            "Fetch": grpc.unary_stream_rpc_method_handler(self._fetch, request_deserializer=_identity,
                                                          response_serializer=_identity)})
        self._server.add_generic_rpc_handlers((handler,))
        creds = grpc.ssl_server_credentials([(tls.key, tls.cert)],
                                            root_certificates=b"".join(tls.member_roots.values()),
                                            require_client_auth=True)
        self.port = self._server.add_secure_port(bind, creds)
        if not self.port:
            raise OSError(f"cannot listen on {bind} for the node's payload exchange")

    def _fetch(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        if not DIGEST_RE.match(request or b""):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request a SHA-256 as 64 lowercase hex characters")
        digest = request.decode()
        path = self.store.path(digest)
        if not path.is_file():
            context.abort(grpc.StatusCode.NOT_FOUND, f"artifact {digest[:12]}… is not here")
        with open(path, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    return
                if self.on_sent is not None:
                    self.on_sent(len(chunk))
                yield chunk

    def start(self) -> "ExchangeServer":
        self._server.start()
        log.info("serving payloads on %s", self.bind)
        return self

    def stop(self, grace: float = 1.0) -> None:
        self._server.stop(grace).wait(grace + 1)


def fetch(endpoint: str, digest: str, msp_id: str, tls: NodeTls, max_bytes: int,
          timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """The blob ``digest`` from ``msp_id``'s node at ``endpoint``, hash-checked (:class:`CorruptBlob`), at
    most ``max_bytes``; :class:`FetchError` when that node cannot give it."""
    root = tls.member_roots.get(msp_id)
    if root is None:
        raise FetchError(f"{msp_id} is not a member org this node knows the TLS CA of")
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=tls.key, certificate_chain=tls.cert)
    h, parts, size = hashlib.sha256(), [], 0
    with grpc.secure_channel(endpoint, creds, options=OPTIONS) as ch:
        call = ch.unary_stream(FETCH, request_serializer=_identity, response_deserializer=_identity)
        try:
            for chunk in call(digest.encode(), timeout=timeout):
                size += len(chunk)
                if size > max_bytes:
                    raise CorruptBlob(f"{msp_id}'s node sent more than the {max_bytes} bytes expected")
                h.update(chunk)
                parts.append(chunk)
        except grpc.RpcError as exc:
            raise FetchError(f"{msp_id}'s node at {endpoint}: {exc.code().name}: {exc.details()}") from None
    got = h.hexdigest()
    if got != digest:
        raise CorruptBlob(f"{msp_id}'s node at {endpoint} served bytes hashing to {got[:12]}…, the ledger "
                          f"records {digest[:12]}…")
    return b"".join(parts)
