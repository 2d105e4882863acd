"""The channel genesis block (configtxgen) built from the collected public org definitions only, and
Fabric's own node configuration files, written under the run directory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .config import ConsortiumConfig, PeerOrg
from .fabricbin import FabricBinaryError, FabricInstall
from .layout import Layout

PROFILE = "FedFabricChannel"


def _sig(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def peer_org_section(org: PeerOrg, msp_dir: Path) -> dict[str, Any]:
    """configtx.yaml's entry of a peer org whose definition is unpacked at ``msp_dir``."""
    m = org.msp_id
    return {
        "Name": m, "ID": m, "MSPDir": str(msp_dir),
        "Policies": {
            "Readers": _sig(f"OR('{m}.admin', '{m}.peer', '{m}.client')"),
            "Writers": _sig(f"OR('{m}.admin', '{m}.client')"),
            "Admins": _sig(f"OR('{m}.admin')"),
            "Endorsement": _sig(f"OR('{m}.peer')"),
        },
        "AnchorPeers": [{"Host": org.host, "Port": org.peer.port}],
    }


def configtx(config: ConsortiumConfig, layout: Layout) -> dict[str, Any]:
    """configtxgen's input: one application channel profile, Raft consenters, anchor peers -- every MSP
    and certificate from the public definitions under ``public/``."""
    oo = config.orderer_org
    orderer_org = {
        "Name": oo.msp_id, "ID": oo.msp_id, "MSPDir": str(layout.public_msp(oo.name)),
        "Policies": {
            "Readers": _sig(f"OR('{oo.msp_id}.member')"),
            "Writers": _sig(f"OR('{oo.msp_id}.member')"),
            "Admins": _sig(f"OR('{oo.msp_id}.admin')"),
        },
        "OrdererEndpoints": [f"{o.host}:{o.port}" for o in oo.orderers],
    }
    peer_orgs = [peer_org_section(org, layout.public_msp(org.name)) for org in config.orgs]
    b = config.batch
    consenters = []
    for o in oo.orderers:
        tls = layout.consenter_cert(o)
        consenters.append({"Host": o.host, "Port": o.port,
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


def ensure_genesis_block(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout) -> bool:
    """Write the channel's genesis block once, from the definitions in ``public/``; returns True when it
    was created now. Raises FabricBinaryError naming the orgs whose definitions are missing."""
    if layout.genesis_block.exists():
        return False
    missing = [n for n in [config.orderer_org.name, *(o.name for o in config.orgs)]
               if not layout.definition_file(n).exists()]
    if missing:
        raise FabricBinaryError(f"cannot create channel '{config.channel}': no definition of {', '.join(missing)} "
                                f"in {layout.public_dir} (each org runs `network.sh org init` and sends its "
                                "definition; import it with `network.sh org import FILE`)")
    write_yaml(layout.fabric_cfg / "configtx.yaml", configtx(config, layout))
    layout.genesis_block.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.genesis_block.with_suffix(".tmp")
    fabric.run("configtxgen", ["-configPath", str(layout.fabric_cfg), "-profile", PROFILE,
                               "-channelID", config.channel, "-outputBlock", str(tmp)],
               what="configtxgen (channel genesis block)")
    tmp.rename(layout.genesis_block)
    return True
