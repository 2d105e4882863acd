"""The open Connect streams of one chaincode server, under a cap.

A stream past the cap is always admitted (a peer that reconnects must get its REGISTER at once); to
make room, another stream is dropped: first one that never finished its handshake, then an idle one
(no transaction queued or running), then any; the least recently active first within each kind.
"""
from __future__ import annotations

import threading
from typing import Protocol


class Stream(Protocol):
    """What the table needs to know of a stream (a :class:`fabshim.handler.Handler`)."""

    last_active: float

    @property
    def ready(self) -> bool: ...

    def busy(self) -> bool: ...


class StreamTable:
    """Thread-safe set of the open streams, at most ``cap`` of them."""

    def __init__(self, cap: int) -> None:
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise ValueError(f"max_streams must be a positive integer, not {cap!r}")
        self.cap = cap
        self._lock = threading.Lock()
        self._open: list[Stream] = []

    def admit(self, stream: Stream) -> list[Stream]:
        """Add ``stream``; returns the streams to drop so that at most ``cap`` stay open."""
        with self._lock:
            victims = []
            while len(self._open) >= self.cap:
                victim = min(self._open, key=_drop_order)
                self._open.remove(victim)
                victims.append(victim)
            self._open.append(stream)
            return victims

    def remove(self, stream: Stream) -> None:
        with self._lock:
            if stream in self._open:
                self._open.remove(stream)

    def streams(self) -> list[Stream]:
        with self._lock:
            return list(self._open)

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)


def _drop_order(s: Stream) -> tuple[bool, bool, float]:
    """Smallest first: not ready before ready, idle before busy, least recently active first."""
    return s.ready, s.busy(), s.last_active
