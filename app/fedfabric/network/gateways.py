"""A Gateway to a peer of a site, as one of an org's users, from the site's own layout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import PeerOrg
from .layout import Layout

if TYPE_CHECKING:
    from ..ledger import Gateway


def open_gateway(layout: Layout, org: PeerOrg, user: str, peer: PeerOrg | None = None,
                 **gateway_options: Any) -> "Gateway":
    """A :class:`fedfabric.ledger.Gateway` to ``peer``'s peer (default: ``org``'s own) as ``org``'s
    ``user``; FileNotFoundError naming the MSP directory when that identity is not on this site."""
    from ..ledger import Gateway, Identity

    msp = layout.user_msp(org, user)
    if not msp.exists():
        raise FileNotFoundError(f"no identity {user!r} for {org.name}: {msp} is missing "
                                "(is the network generated? network/network.sh up)")
    identity = Identity.from_msp_dir(msp_id=org.msp_id, msp_dir=msp)
    peer = peer or org
    return Gateway.connect(endpoint=layout.peer_endpoint(peer), identity=identity,
                           tls_root_cert=layout.peer_tls_ca(peer), **gateway_options)
