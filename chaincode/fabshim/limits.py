"""What one Connect stream may hold of the chaincode server, so that no stream can starve the others."""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_WORKERS = 64
DEFAULT_MAX_STREAMS = 64
DEFAULT_MAX_INFLIGHT = 256
DEFAULT_REQUEST_TIMEOUT_S = 15.0
DEFAULT_MAX_BACKLOG = 256 << 20  # bytes: room for two messages of the 100 MiB gRPC limit


@dataclass(frozen=True)
class StreamLimits:
    """Per-stream bounds.

    ``max_inflight``: transactions accepted and not yet answered; one more is answered with ERROR
    at once. ``max_running``: of those, how many may hold a worker of the shared pool at the same
    time (the rest wait their turn, so one stream never holds every worker). ``request_timeout``:
    seconds a transaction waits for the peer's answer to one of its requests (GET_STATE, PUT_STATE,
    ...) before it is answered with ERROR and its worker let go. ``max_backlog``: bytes queued for the
    peer that it has not read yet; past that the peer is not reading and the stream is dropped.
    """

    max_inflight: int = DEFAULT_MAX_INFLIGHT
    max_running: int = DEFAULT_MAX_WORKERS // 4
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S
    max_backlog: int = DEFAULT_MAX_BACKLOG

    def __post_init__(self) -> None:
        for name in ("max_inflight", "max_running", "max_backlog"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not self.request_timeout > 0:
            raise ValueError(f"request_timeout must be a positive number of seconds, not {self.request_timeout!r}")
