"""Crypto material (cryptogen) and the channel genesis block (configtxgen), written under run/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from .config import ConsortiumConfig
from .fabricbin import FabricBinaryError, FabricInstall
from .layout import Layout

SANS = ["127.0.0.1", "localhost"]
PROFILE = "FedFabricChannel"


def crypto_config(config: ConsortiumConfig) -> dict[str, Any]:
    """cryptogen's input: node OUs on, SANs for what clients dial (127.0.0.1, localhost)."""
    oo = config.orderer_org
    return {
        "OrdererOrgs": [{
            "Name": oo.name, "Domain": oo.domain, "EnableNodeOUs": True,
            "Specs": [{"Hostname": o.name, "SANS": SANS} for o in oo.orderers],
        }],
        "PeerOrgs": [{
            "Name": org.name, "Domain": org.domain, "EnableNodeOUs": True,
            "Specs": [{"Hostname": org.peer.name, "SANS": SANS}],
            "Users": {"Count": 2},   # User1: trainer, User2: auditor
        } for org in config.orgs],
    }


def _sig(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def configtx(config: ConsortiumConfig, layout: Layout) -> dict[str, Any]:
    """configtxgen's input: one application channel profile, Raft consenters, anchor peers."""
    oo = config.orderer_org
    orderer_org = {
        "Name": oo.msp_id, "ID": oo.msp_id, "MSPDir": str(layout.orderer_org_dir / "msp"),
        "Policies": {
            "Readers": _sig(f"OR('{oo.msp_id}.member')"),
            "Writers": _sig(f"OR('{oo.msp_id}.member')"),
            "Admins": _sig(f"OR('{oo.msp_id}.admin')"),
        },
        "OrdererEndpoints": [f"{config.host}:{o.port}" for o in oo.orderers],
    }
    peer_orgs = []
    for org in config.orgs:
        m = org.msp_id
        peer_orgs.append({
            "Name": m, "ID": m, "MSPDir": str(layout.org_dir(org) / "msp"),
            "Policies": {
                "Readers": _sig(f"OR('{m}.admin', '{m}.peer', '{m}.client')"),
                "Writers": _sig(f"OR('{m}.admin', '{m}.client')"),
                "Admins": _sig(f"OR('{m}.admin')"),
                "Endorsement": _sig(f"OR('{m}.peer')"),
            },
            "AnchorPeers": [{"Host": config.host, "Port": org.peer.port}],
        })
    b = config.batch
    consenters = []
    for o in oo.orderers:
        tls = layout.orderer_dir(o) / "tls" / "server.crt"
        consenters.append({"Host": config.host, "Port": o.port,
                           "ClientTLSCert": str(tls), "ServerTLSCert": str(tls)})
    standard = {"Readers": _meta("ANY Readers"), "Writers": _meta("ANY Writers"),
                "Admins": _meta("MAJORITY Admins")}
    profile = {
        "Policies": standard,
        "Capabilities": {"V2_0": True},
        "Orderer": {
            "OrdererType": "etcdraft",
            "BatchTimeout": f"{b.timeout_ms}ms",
            "BatchSize": {"MaxMessageCount": b.max_message_count,
                          "AbsoluteMaxBytes": b.absolute_max_bytes,
                          "PreferredMaxBytes": b.preferred_max_bytes},
            "EtcdRaft": {"Consenters": consenters,
                         "Options": {"TickInterval": "200ms", "ElectionTick": 10, "HeartbeatTick": 1,
                                     "MaxInflightBlocks": 5, "SnapshotIntervalSize": 16777216}},
            "Organizations": [orderer_org],
            "Policies": {**standard, "BlockValidation": _meta("ANY Writers")},
            "Capabilities": {"V2_0": True},
        },
        "Application": {
            "Organizations": peer_orgs,
            "Policies": {**standard,
                         "LifecycleEndorsement": _meta("MAJORITY Endorsement"),
                         "Endorsement": _meta("MAJORITY Endorsement")},
            "Capabilities": {"V2_5": True},
        },
    }
    return {"Profiles": {PROFILE: profile}}


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def ensure_fabric_config(fabric: FabricInstall, layout: Layout) -> None:
    """Copy the build's core.yaml/orderer.yaml into run/config (overridden per node by env).

    core.yaml's ``vm.endpoint`` is blanked: no Docker engine, and an empty environment variable
    cannot override it (viper treats it as unset), so the peer's docker health check would fail.
    """
    layout.fabric_cfg.mkdir(parents=True, exist_ok=True)
    for name in ("core.yaml", "orderer.yaml"):
        dst = layout.fabric_cfg / name
        if dst.exists():
            continue
        text = (fabric.config_dir / name).read_text()
        if name == "core.yaml":
            text, n = re.subn(r"(?m)^(\s+endpoint:\s*)unix:///var/run/docker\.sock\s*$", r'\1""', text)
            if n != 1:
                raise FabricBinaryError(f"{fabric.config_dir / name}: vm.endpoint not found; "
                                        "unexpected core.yaml layout")
        dst.write_text(text)


def ensure_crypto(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout) -> bool:
    """Generate crypto material once; returns True when it was generated now."""
    marker = layout.crypto / ".complete"
    if marker.exists():
        return False
    shutil.rmtree(layout.crypto, ignore_errors=True)
    cfg = layout.root / "config" / "crypto-config.yaml"
    write_yaml(cfg, crypto_config(config))
    fabric.run("cryptogen", ["generate", f"--config={cfg}", f"--output={layout.crypto}"],
               what="cryptogen generate")
    marker.write_text("ok\n")
    return True


def ensure_genesis_block(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout) -> bool:
    """Write the channel's genesis block once; returns True when it was created now."""
    if layout.genesis_block.exists():
        return False
    write_yaml(layout.fabric_cfg / "configtx.yaml", configtx(config, layout))
    layout.genesis_block.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.genesis_block.with_suffix(".tmp")
    fabric.run("configtxgen", ["-configPath", str(layout.fabric_cfg), "-profile", PROFILE,
                               "-channelID", config.channel, "-outputBlock", str(tmp)],
               what="configtxgen (channel genesis block)")
    tmp.rename(layout.genesis_block)
    return True
