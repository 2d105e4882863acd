"""Helpers for live-network ledger tests (network layout may still change: keep these thin).

``connect_org(net, "org1")`` takes a running ``fedfabric.network.manager.SiteManager`` (e.g. the
``live_network`` fixture) or a run directory, and returns a :class:`fedfabric.ledger.Gateway`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fedfabric.ledger import Gateway, Qscc


def connect_org(net_or_run_root: Any, org: str, user: str = "User1", config: Any = None,
                **gateway_options: Any) -> Gateway:
    """Gateway to ``org``'s peer as ``user``; ``net_or_run_root`` is a manager SiteManager or a run dir."""
    from fedfabric.connect import connect

    layout = getattr(net_or_run_root, "layout", None)
    if layout is not None:
        return connect(org, user, config=layout.config, run_root=layout.root, **gateway_options)
    return connect(org, user, config=config, run_root=Path(net_or_run_root), **gateway_options)


def channel_of(net: Any, default: str = "fl") -> str:
    """The channel name of a manager SiteManager (``fl`` if unknown)."""
    return getattr(getattr(net, "config", None), "channel", default)


def wait_for_height(qscc: Qscc, height: int, timeout: float = 30.0, poll: float = 0.2) -> int:
    """Poll ``GetChainInfo`` until the peer's ledger height reaches ``height``; the height reached."""
    deadline = time.monotonic() + timeout
    while True:
        current = qscc.chain_info()["height"]
        if current >= height or time.monotonic() >= deadline:
            if current < height:
                raise TimeoutError(f"ledger height {current} < {height} after {timeout}s")
            return current
        time.sleep(poll)


def wait_until_endorsable(contract: Any, function: str, args: list[Any] | None = None, timeout: float = 60.0,
                          poll: float = 0.5) -> Any:
    """Submit ``function`` until the Gateway can find endorsers for it; the SubmitResult.

    Right after a deploy the gateway peer learns of other orgs' installed chaincode through gossip
    only after a few seconds; until then Endorse fails with FAILED_PRECONDITION ("no combination
    of peers can be derived which satisfy the endorsement policy").
    """
    import grpc

    from fedfabric.ledger import EndorseError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return contract.submit(function, args=args or [])
        except EndorseError as err:
            if err.code is not grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() >= deadline:
                raise
            time.sleep(poll)
