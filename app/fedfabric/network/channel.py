"""Channel membership and heights, through the Fabric CLIs (osnadmin, peer channel)."""

from __future__ import annotations

import json
import re

from .config import ConsortiumConfig, Orderer, PeerOrg
from .fabricbin import FabricBinaryError, FabricInstall
from .layout import Layout


def _osnadmin_tls(layout: Layout) -> list[str]:
    admin = layout.orderer_admin_dir / "tls"
    return ["--ca-file", str(layout.orderer_tls_ca), "--client-cert", str(admin / "client.crt"),
            "--client-key", str(admin / "client.key")]


def orderer_channel_info(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout,
                         o: Orderer) -> dict | None:
    """``osnadmin channel list --channelID``: {name, status, consensusRelation, height} or None if not joined."""
    try:
        out = fabric.run("osnadmin", ["channel", "list", "--channelID", config.channel,
                                      "-o", f"{config.host}:{o.admin_port}", *_osnadmin_tls(layout)],
                         timeout=15, what=f"osnadmin channel info on {o.name}")
    except FabricBinaryError as exc:
        if "404" in str(exc) or "cannot find channel" in str(exc):
            return None
        raise
    return _json_after_status(out)


def _json_after_status(out: str) -> dict | None:
    # osnadmin prints "Status: 200\n{json}"
    m = re.search(r"Status:\s*(\d+)\s*(\{.*\})", out, re.S)
    if not m:
        return None
    if m.group(1) == "404":
        return None
    return json.loads(m.group(2))


def orderer_join(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, o: Orderer) -> None:
    out = fabric.run("osnadmin", ["channel", "join", "--channelID", config.channel, "--config-block",
                                  str(layout.genesis_block), "-o", f"{config.host}:{o.admin_port}",
                                  *_osnadmin_tls(layout)],
                     timeout=30, what=f"osnadmin channel join on {o.name}")
    m = re.search(r"Status:\s*(\d+)", out)
    if not m or m.group(1) not in ("201", "405"):
        raise FabricBinaryError(f"osnadmin channel join on {o.name}: unexpected answer: {out.strip()}")


def peer_admin_env(config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> dict[str, str]:
    """Environment for the ``peer`` CLI acting as the org's admin against its own peer."""
    return {
        "FABRIC_CFG_PATH": str(layout.fabric_cfg),
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(layout.user_msp(org)),
        "CORE_PEER_ADDRESS": f"{config.host}:{org.peer.port}",
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_ROOTCERT_FILE": str(layout.peer_dir(org) / "tls" / "ca.crt"),
        "FABRIC_LOGGING_SPEC": "WARNING",
    }


def peer_channels(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> list[str]:
    out = fabric.run("peer", ["channel", "list"], env=peer_admin_env(config, layout, org), timeout=15,
                     what=f"peer channel list on {org.peer.name}.{org.name}")
    lines = out.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if "Channels peers has joined" in l)
    except StopIteration:
        return []
    return [l.strip() for l in lines[start + 1:] if l.strip() and not l.startswith(("20", "\x1b"))]


def peer_join(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> None:
    fabric.run("peer", ["channel", "join", "-b", str(layout.genesis_block)],
               env=peer_admin_env(config, layout, org), timeout=60,
               what=f"peer channel join on {org.peer.name}.{org.name}")


def peer_height(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> int | None:
    """The peer's block height on the channel (``peer channel getinfo``), None if not joined."""
    try:
        out = fabric.run("peer", ["channel", "getinfo", "-c", config.channel],
                         env=peer_admin_env(config, layout, org), timeout=15,
                         what=f"peer channel getinfo on {org.peer.name}.{org.name}")
    except FabricBinaryError:
        return None
    m = re.search(r"Blockchain info:\s*(\{.*\})", out)
    return int(json.loads(m.group(1))["height"]) if m else None
