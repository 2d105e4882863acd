"""Fabric chaincode lifecycle through the ``peer lifecycle chaincode`` CLI (one org admin at a time)."""

from __future__ import annotations

import json
from pathlib import Path

from .channel import peer_admin_env
from .config import ConsortiumConfig, PeerOrg
from .fabricbin import FabricBinaryError, FabricInstall
from .layout import Layout


def _orderer_args(config: ConsortiumConfig, layout: Layout) -> list[str]:
    o = config.orderer_org.orderers[0]
    return ["-o", f"{config.host}:{o.port}", "--tls", "--cafile", str(layout.orderer_tls_ca)]


def _peer_cli(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
              args: list[str], what: str, timeout: float = 120) -> str:
    return fabric.run("peer", ["lifecycle", "chaincode", *args], env=peer_admin_env(config, layout, org),
                      timeout=timeout, what=f"{what} ({org.name})")


def package_id(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
               package: Path) -> str:
    out = _peer_cli(fabric, config, layout, org, ["calculatepackageid", str(package)],
                    "calculatepackageid")
    return out.strip().splitlines()[-1].strip()


def installed_ids(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> set[str]:
    out = _peer_cli(fabric, config, layout, org, ["queryinstalled", "-O", "json"], "queryinstalled")
    data = json.loads(out[out.index("{"):]) if "{" in out else {}
    return {c["package_id"] for c in data.get("installed_chaincodes", [])}


def install(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
            package: Path) -> None:
    _peer_cli(fabric, config, layout, org, ["install", str(package)], "chaincode install", timeout=300)


def committed(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
              name: str) -> dict | None:
    """The committed definition (sequence, version, validation parameter, collections) or None."""
    try:
        out = _peer_cli(fabric, config, layout, org, ["querycommitted", "--channelID", config.channel,
                                                      "--name", name, "-O", "json"], "querycommitted")
    except FabricBinaryError as exc:
        if "404" in str(exc) or "not found" in str(exc):
            return None
        raise
    return json.loads(out[out.index("{"):])


def _definition_args(config: ConsortiumConfig, name: str, version: str, sequence: int, policy: str,
                     collections: Path | None) -> list[str]:
    args = ["--channelID", config.channel, "--name", name, "--version", version,
            "--sequence", str(sequence), "--signature-policy", policy]
    if collections is not None:
        args += ["--collections-config", str(collections)]
    return args


def approve(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg, *, name: str,
            version: str, sequence: int, policy: str, pkg_id: str, collections: Path | None) -> None:
    _peer_cli(fabric, config, layout, org,
              ["approveformyorg", *_orderer_args(config, layout), "--package-id", pkg_id,
               *_definition_args(config, name, version, sequence, policy, collections)],
              "approveformyorg")


def commit(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, *, name: str, version: str,
           sequence: int, policy: str, collections: Path | None) -> None:
    peers: list[str] = []
    for org in config.orgs:
        peers += ["--peerAddresses", f"{config.host}:{org.peer.port}",
                  "--tlsRootCertFiles", str(layout.peer_dir(org) / "tls" / "ca.crt")]
    _peer_cli(fabric, config, layout, config.orgs[0],
              ["commit", *_orderer_args(config, layout), *peers,
               *_definition_args(config, name, version, sequence, policy, collections)],
              "chaincode commit")
