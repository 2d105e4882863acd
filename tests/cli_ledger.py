"""`fedfabric` commands on an in-memory ledger.

Every command connects through :func:`fedfabric.client.open_client`, so a test points that one function
at the clients it wants (a :class:`tests.node.memledger.MemClient`, an audit world's client, a fake that
raises) and reads back how the commands asked to connect.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest


@dataclass(frozen=True)
class Opened:
    """One connection a command opened."""

    org: str
    user: str
    config: Any
    run_root: Path
    peer_org: Optional[str]


class Gateway:
    """What the commands ask of a gateway: the channel's (empty) event stream, a peer's qscc, closing."""

    def __init__(self, qscc: Any = None) -> None:
        self._qscc = qscc

    def get_network(self, channel: str) -> "Gateway":
        return self

    def chaincode_events(self, name: str, **kw: Any) -> Any:
        return iter(())

    def qscc(self) -> Any:
        return self._qscc

    def close(self) -> None:
        pass

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def serve(monkeypatch: pytest.MonkeyPatch, client_for: Callable[[str, str], Any],
          qscc_for: Optional[Callable[[str], Any]] = None) -> list[Opened]:
    """Every command's ledger is ``client_for(org, user)`` (and a peer's qscc ``qscc_for(peer org)``);
    returns the connections the commands opened, in order."""
    opened: list[Opened] = []

    def open_client(org: str, user: str = "User1", *, config: Any = None, run_root: Any = None,
                    peer_org: Optional[str] = None, **_: Any) -> tuple[Gateway, Any]:
        opened.append(Opened(org, user, config, run_root, peer_org))
        return Gateway(qscc_for(peer_org) if qscc_for else None), client_for(org, user)

    monkeypatch.setattr("fedfabric.client.open_client", open_client)
    return opened
