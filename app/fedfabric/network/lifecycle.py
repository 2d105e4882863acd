"""Fabric chaincode lifecycle through the ``peer lifecycle chaincode`` CLI (one org admin at a time)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .channel import orderer_args, peer_admin_env
from .config import ConsortiumConfig, PeerOrg
from .fabricbin import FabricBinaryError, FabricInstall
from .layout import Layout


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


# Fabric's answer to re-approving, for the next sequence, exactly what the org already approved
# (core/chaincode/lifecycle: "attempted to redefine uncommitted sequence (N) for namespace X with
# unchanged content"): the approval it asks for is in place.
UNCHANGED_APPROVAL = re.compile(r"attempted to redefine uncommitted sequence \(\d+\) for namespace \S+ "
                                r"with unchanged content")


# Fabric's answer to approving, at the committed sequence, a definition other than the committed one
# (core/chaincode/lifecycle: "attempted to redefine the current committed sequence (N) for namespace X
# with different parameters"): the definition changed, a new sequence is needed.
DIFFERENT_COMMITTED = re.compile(r"attempted to redefine the current committed sequence \(\d+\) for namespace "
                                 r"\S+ with different parameters")


def approve(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg, *, name: str,
            version: str, sequence: int, policy: str, pkg_id: str, collections: Path | None) -> bool:
    """``approveformyorg``; True when approved now, False when the org had already approved exactly
    this definition and package (Fabric refuses the repeat as 'unchanged content')."""
    try:
        _peer_cli(fabric, config, layout, org,
                  ["approveformyorg", *orderer_args(config, layout), "--package-id", pkg_id,
                   *_definition_args(config, name, version, sequence, policy, collections)],
                  "approveformyorg")
    except FabricBinaryError as exc:
        if UNCHANGED_APPROVAL.search(str(exc)):
            return False
        raise
    return True


def _json(out: str) -> dict:
    """The first JSON object in a CLI's output (log lines may come before or after it)."""
    if "{" not in out:
        return {}
    return json.JSONDecoder().raw_decode(out[out.index("{"):])[0]


def approved(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg, name: str,
             sequence: int) -> dict | None:
    """``queryapproved``: what ``org`` approved for ``name`` at ``sequence``, None if nothing."""
    try:
        out = _peer_cli(fabric, config, layout, org,
                        ["queryapproved", "--channelID", config.channel, "--name", name,
                         "--sequence", str(sequence), "-O", "json"], "queryapproved")
    except FabricBinaryError as exc:
        if "could not fetch approved chaincode definition" in str(exc):
            return None
        raise
    return _json(out)


def approved_package_id(definition: dict | None) -> str | None:
    """The package id in a ``queryapproved`` answer (``source.Type.LocalPackage.package_id``)."""
    if not definition:
        return None
    local = definition.get("source", {}).get("Type", {}).get("LocalPackage", {})
    return local.get("package_id") or None


def commit_readiness(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg, *,
                     name: str, version: str, sequence: int, policy: str,
                     collections: Path | None) -> dict[str, bool]:
    """``checkcommitreadiness``: which orgs (MSP id -> bool) approved exactly this definition
    (version, sequence, policy, collections; package ids are each org's own and not compared)."""
    out = _peer_cli(fabric, config, layout, org,
                    ["checkcommitreadiness", *_definition_args(config, name, version, sequence, policy,
                                                               collections), "-O", "json"],
                    "checkcommitreadiness")
    return {msp: bool(ok) for msp, ok in _json(out).get("approvals", {}).items()}


def commit(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, *, committer: PeerOrg,
           endorsers: list[PeerOrg], name: str, version: str, sequence: int, policy: str,
           collections: Path | None) -> None:
    """``commit`` as ``committer``'s admin, endorsed by the peers of ``endorsers`` (orgs that approved:
    their peers' TLS roots come from their definitions)."""
    peers: list[str] = []
    for org in endorsers:
        peers += ["--peerAddresses", layout.peer_endpoint(org), "--tlsRootCertFiles", str(layout.peer_tls_ca(org))]
    _peer_cli(fabric, config, layout, committer,
              ["commit", *orderer_args(config, layout), *peers,
               *_definition_args(config, name, version, sequence, policy, collections)],
              "chaincode commit")
