"""Connect to the consortium's ledger as one org's identity, using the network's own layout."""

from __future__ import annotations

from pathlib import Path

from .network.config import ConsortiumConfig, load_config
from .network.gateways import open_gateway
from .network.layout import Layout
from .network import paths


def site_layout(config: ConsortiumConfig | None = None, run_root: Path | None = None) -> Layout:
    """The layout of the run directory ``run_root`` (default: :func:`paths.run_dir`) for ``config``
    (default: ``network/consortium.yaml``)."""
    return Layout((run_root or paths.run_dir()).resolve(), config or load_config(paths.DEFAULT_CONFIG))


def connect(org: str, user: str = "User1", *, config: ConsortiumConfig | None = None,
            run_root: Path | None = None, peer_org: str | None = None, **gateway_options):
    """A :class:`fedfabric.ledger.Gateway` to ``org``'s peer as ``user`` (``User1`` trainer,
    ``Admin``, ``Auditor``). ``org`` is ``org1`` or ``Org1MSP``. ``peer_org``: talk to that org's peer
    instead, still as ``org``'s ``user`` (any channel member's peer answers queries)."""
    layout = site_layout(config, run_root)
    o = layout.config.org(org)
    return open_gateway(layout, o, user, layout.config.org(peer_org) if peer_org else None, **gateway_options)
