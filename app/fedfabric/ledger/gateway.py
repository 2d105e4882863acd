"""Connection to a peer's Gateway service: the root of ``Gateway → Network → Contract``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from fabric_protos.gateway import gateway_pb2_grpc

from .identity import Identity

if TYPE_CHECKING:
    from .network import Network

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 100 * 1024 * 1024

#: Keepalive must not ping more often than the peer's ``keepalive.minInterval`` (60 s).
CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]


@dataclass(frozen=True)
class Timeouts:
    """Default deadlines in seconds for each kind of Gateway call."""

    evaluate: float = 10.0
    endorse: float = 30.0
    submit: float = 10.0
    commit_status: float = 60.0


def _pem(value: str | Path | bytes | None) -> bytes | None:
    """PEM bytes from bytes, a PEM string or a path."""
    if value is None or isinstance(value, bytes):
        return value
    text = str(value)
    if "-----BEGIN" in text:
        return text.encode()
    return Path(text).read_bytes()


def open_channel(endpoint: str, tls_root_cert: str | Path | bytes | None = None,
                 server_name: str | None = None, client_cert: str | Path | bytes | None = None,
                 client_key: str | Path | bytes | None = None) -> grpc.Channel:
    """A gRPC channel to ``endpoint``: TLS when ``tls_root_cert`` is given, plaintext otherwise."""
    options = list(CHANNEL_OPTIONS)
    root = _pem(tls_root_cert)
    if root is None:
        log.info("connecting to %s without TLS", endpoint)
        return grpc.insecure_channel(endpoint, options=options)
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key must be given together")
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=_pem(client_key),
                                         certificate_chain=_pem(client_cert))
    if server_name:
        options += [("grpc.ssl_target_name_override", server_name), ("grpc.default_authority", server_name)]
    return grpc.secure_channel(endpoint, creds, options=options)


class Gateway:
    """A client identity connected to one peer's Gateway service."""

    def __init__(self, channel: grpc.Channel, identity: Identity,
                 default_timeouts: Timeouts | None = None, endpoint: str = "", owns_channel: bool = False) -> None:
        self.identity = identity
        self.timeouts = default_timeouts or Timeouts()
        self.endpoint = endpoint
        self._channel = channel
        self._owns_channel = owns_channel
        self._closed = False
        self.stub = gateway_pb2_grpc.GatewayStub(channel)

    @classmethod
    def connect(cls, endpoint: str, identity: Identity, tls_root_cert: str | Path | bytes | None = None,
                server_name: str | None = None, client_cert: str | Path | bytes | None = None,
                client_key: str | Path | bytes | None = None,
                default_timeouts: Timeouts | None = None) -> "Gateway":
        """Open a channel to ``endpoint`` (``host:port``); TLS with ``tls_root_cert`` (path or PEM)."""
        channel = open_channel(endpoint, tls_root_cert, server_name, client_cert, client_key)
        log.debug("gateway %s as %s", endpoint, identity.msp_id)
        return cls(channel, identity, default_timeouts, endpoint=endpoint, owns_channel=True)

    def get_network(self, channel_id: str) -> "Network":
        """The named Fabric channel."""
        from .network import Network
        return Network(self, channel_id)

    def close(self) -> None:
        """Close the gRPC channel if this Gateway opened it; open event streams end quietly."""
        self._closed = True
        if self._owns_channel:
            self._channel.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gateway({self.endpoint!r}, msp_id={self.identity.msp_id!r})"

