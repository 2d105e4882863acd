"""Channel membership, heights and config updates, through the Fabric CLIs (osnadmin, peer channel,
configtxlator)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .config import Batch, ConsortiumConfig, Orderer, PeerOrg
from .fabricbin import FabricBinaryError, FabricInstall
from .layout import Layout

LEADER_WAIT_S = 30.0   # how long a freshly joined channel may take to elect its Raft leader

def _osnadmin_tls(layout: Layout) -> list[str]:
    admin = layout.orderer_admin_dir / "tls"
    return ["--ca-file", str(layout.orderer_tls_ca), "--client-cert", str(admin / "client.crt"),
            "--client-key", str(admin / "client.key")]


def orderer_channel_info(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout,
                         o: Orderer) -> dict | None:
    """``osnadmin channel list --channelID``: {name, status, consensusRelation, height} or None if not joined."""
    try:
        out = fabric.run("osnadmin", ["channel", "list", "--channelID", config.channel,
                                      "-o", f"{o.host}:{o.admin_port}", *_osnadmin_tls(layout)],
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
                                  str(layout.genesis_block), "-o", f"{o.host}:{o.admin_port}",
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
        "CORE_PEER_ADDRESS": layout.peer_endpoint(org),
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


def fetch_genesis_block(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
                        wait_s: float = LEADER_WAIT_S) -> Path:
    """The channel's block 0 from an orderer, as ``org``'s admin (a site without the orderer org). Just after
    the orderers joined the channel they answer SERVICE_UNAVAILABLE until Raft elected a leader: that is
    retried for up to ``wait_s`` seconds."""
    block = layout.genesis_block
    block.parent.mkdir(parents=True, exist_ok=True)
    tmp = block.with_suffix(".fetching")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fabric.run("peer", ["channel", "fetch", "0", str(tmp), "-c", config.channel,
                                *orderer_args(config, layout)],
                       env=peer_admin_env(config, layout, org), timeout=30,
                       what=f"peer channel fetch 0 from the orderer ({org.name})")
            break
        except FabricBinaryError as exc:
            if "SERVICE_UNAVAILABLE" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    tmp.rename(block)
    return block


def peer_join(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> None:
    """Join ``org``'s peer to the channel with block 0 (fetched from an orderer unless the site has it)."""
    if not layout.genesis_block.exists():
        fetch_genesis_block(fabric, config, layout, org)
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


# -- channel config updates ----------------------------------------------------------------------

@dataclass(frozen=True)
class Admin:
    """An org's admin identity, as the ``peer`` CLI signs with it."""

    msp_id: str
    msp_dir: Path

    def env(self, layout: Layout) -> dict[str, str]:
        return {"FABRIC_CFG_PATH": str(layout.fabric_cfg), "CORE_PEER_LOCALMSPID": self.msp_id,
                "CORE_PEER_MSPCONFIGPATH": str(self.msp_dir), "CORE_PEER_TLS_ENABLED": "true",
                "CORE_PEER_TLS_ROOTCERT_FILE": str(layout.orderer_tls_ca), "FABRIC_LOGGING_SPEC": "WARNING"}


def orderer_admin(config: ConsortiumConfig, layout: Layout) -> Admin:
    """Signs changes to the orderer group (/Channel/Orderer/Admins: MAJORITY of the orderer orgs)."""
    return Admin(config.orderer_org.msp_id, layout.orderer_admin_dir / "msp")


def org_admin(layout: Layout, org: PeerOrg) -> Admin:
    return Admin(org.msp_id, layout.user_msp(org))


def orderer_args(config: ConsortiumConfig, layout: Layout) -> list[str]:
    """``peer`` CLI options that reach the first orderer over TLS."""
    o = config.orderer_org.orderers[0]
    return ["-o", f"{o.host}:{o.port}", "--tls", "--cafile", str(layout.orderer_tls_ca)]




def translate(fabric: FabricInstall, verb: str, kind: str, src: Path, dst: Path) -> None:
    fabric.run("configtxlator", [verb, "--type", kind, "--input", str(src), "--output", str(dst)],
               timeout=30, what=f"configtxlator {verb} {kind}")


def fetch_config(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, workdir: Path,
                 admin: Admin) -> dict[str, Any]:
    """The channel's current config (``common.Config`` as JSON), from its last config block."""
    return _config_block(fabric, config, layout, workdir, admin)["data"]["data"][0]["payload"]["data"]["config"]


def _config_block(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, workdir: Path,
                  admin: Admin) -> dict[str, Any]:
    block = workdir / "config_block.pb"
    fabric.run("peer", ["channel", "fetch", "config", str(block), "-c", config.channel,
                        *orderer_args(config, layout)],
               env=admin.env(layout), timeout=30, what=f"peer channel fetch config ({admin.msp_id})")
    translate(fabric, "proto_decode", "common.Block", block, workdir / "config_block.json")
    return json.loads((workdir / "config_block.json").read_text())


def latest_config(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout,
                  admin: Admin) -> tuple[int, dict[str, Any]]:
    """(number of the channel's last config block, its config as JSON)."""
    with scratch_dir(layout, "fetch-") as work:
        block = _config_block(fabric, config, layout, work, admin)
    return int(block["header"]["number"]), block["data"]["data"][0]["payload"]["data"]["config"]


def update_config(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout,
                  modify: Callable[[dict[str, Any]], None], signers: Sequence[Admin]) -> bool:
    """Apply ``modify`` to the channel config and submit the update, signed by every admin in
    ``signers`` (``peer channel signconfigtx``; the last one submits it with ``peer channel
    update``). Returns False, submitting nothing, when ``modify`` changes nothing."""
    if not signers:
        raise ValueError("a config update needs at least one signer")
    with scratch_dir(layout, "update-") as work:
        envelope = work / "envelope.pb"
        if not build_update(fabric, config, layout, modify, signers[-1], envelope):
            return False
        for admin in signers[:-1]:
            sign_update(fabric, layout, admin, envelope)
        submit_update(fabric, config, layout, signers[-1], envelope)
        return True


def build_update(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout,
                 modify: Callable[[dict[str, Any]], None], admin: Admin, dest: Path) -> bool:
    """Write to ``dest`` the unsigned update envelope that applies ``modify`` to the channel's current
    config (fetched as ``admin``); False, writing nothing, when ``modify`` changes nothing."""
    with scratch_dir(layout, "build-") as work:
        original = fetch_config(fabric, config, layout, work, admin)
        updated = copy.deepcopy(original)
        modify(updated)
        if updated == original:
            return False
        shutil.copyfile(_update_envelope(fabric, config, work, original, updated), dest)
        return True


def sign_update(fabric: FabricInstall, layout: Layout, admin: Admin, envelope: Path) -> None:
    """Add ``admin``'s signature to the update envelope file (``peer channel signconfigtx``, in place)."""
    fabric.run("peer", ["channel", "signconfigtx", "-f", str(envelope)], env=admin.env(layout),
               timeout=30, what=f"peer channel signconfigtx ({admin.msp_id})")


def submit_update(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, admin: Admin,
                  envelope: Path) -> None:
    """Submit the update envelope to an orderer as ``admin`` (``peer channel update`` adds its signature)."""
    fabric.run("peer", ["channel", "update", "-f", str(envelope), "-c", config.channel,
                        *orderer_args(config, layout)],
               env=admin.env(layout), timeout=60, what=f"peer channel update ({admin.msp_id})")


@contextmanager
def scratch_dir(layout: Layout, prefix: str) -> Iterator[Path]:
    """A scratch directory under the run dir's ``channel/`` for config blocks, removed afterwards."""
    parent = layout.root / "channel"
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _update_envelope(fabric: FabricInstall, config: ConsortiumConfig, work: Path,
                     original: dict[str, Any], updated: dict[str, Any]) -> Path:
    """configtxlator: encode both configs, compute the ConfigUpdate, wrap it in an Envelope."""
    for name, doc in (("original", original), ("updated", updated)):
        (work / f"{name}.json").write_text(json.dumps(doc))
        translate(fabric, "proto_encode", "common.Config", work / f"{name}.json", work / f"{name}.pb")
    fabric.run("configtxlator", ["compute_update", "--channel_id", config.channel,
                                 "--original", str(work / "original.pb"), "--updated", str(work / "updated.pb"),
                                 "--output", str(work / "update.pb")],
               timeout=30, what="configtxlator compute_update")
    translate(fabric, "proto_decode", "common.ConfigUpdate", work / "update.pb", work / "update.json")
    envelope = {"payload": {"header": {"channel_header": {"channel_id": config.channel, "type": 2}},
                            "data": {"config_update": json.loads((work / "update.json").read_text())}}}
    (work / "envelope.json").write_text(json.dumps(envelope))
    translate(fabric, "proto_encode", "common.Envelope", work / "envelope.json", work / "envelope.pb")
    return work / "envelope.pb"


def _orderer_values(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["channel_group"]["groups"]["Orderer"]["values"]


def batch_settings(cfg: dict[str, Any]) -> Batch:
    """The block cutting settings of a channel config (as fetched by :func:`fetch_config`)."""
    values = _orderer_values(cfg)
    size = values["BatchSize"]["value"]
    timeout = values["BatchTimeout"]["value"]["timeout"]
    if not timeout.endswith("ms"):
        raise FabricBinaryError(f"BatchTimeout {timeout!r} is not in milliseconds")
    return Batch(timeout_ms=int(timeout[:-2]), max_message_count=int(size["max_message_count"]),
                 absolute_max_bytes=int(size["absolute_max_bytes"]),
                 preferred_max_bytes=int(size["preferred_max_bytes"]))


def _set_batch(cfg: dict[str, Any], batch: Batch) -> None:
    values = _orderer_values(cfg)
    values["BatchTimeout"]["value"]["timeout"] = f"{batch.timeout_ms}ms"
    values["BatchSize"]["value"].update(max_message_count=batch.max_message_count,
                                        absolute_max_bytes=batch.absolute_max_bytes,
                                        preferred_max_bytes=batch.preferred_max_bytes)


def apply_batch(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, batch: Batch) -> bool:
    """Make the running channel cut blocks with ``batch`` (a config transaction signed by the
    orderer org's admin); False when it already does."""
    return update_config(fabric, config, layout, lambda cfg: _set_batch(cfg, batch),
                         [orderer_admin(config, layout)])


def read_batch(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout) -> Batch:
    """The batch settings the running channel uses now."""
    with scratch_dir(layout, "fetch-") as work:
        return batch_settings(fetch_config(fabric, config, layout, work, orderer_admin(config, layout)))
