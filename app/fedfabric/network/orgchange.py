"""Channel config updates that add or remove a peer org, passed from org to org as a file.

The proposing org's admin builds the update from the channel's current config and the new org's
definition (``propose_add``: its org group exactly as configtxgen encodes it, anchor peer included) or
by dropping an org's group (``propose_remove``), and signs it. The file travels to the other orgs'
admins; each checks it (:func:`describe`, :func:`check_adds`) and adds its signature
(``channel.sign_update``). Whoever submits it (``submit``) first checks Fabric's own rule for the
Application group -- signatures of a majority of the channel's orgs' admins (``/Channel/Application/
Admins``, ``MAJORITY Admins``) -- and returns the config block it landed in.

The update's identity is the SHA-256 of its ``ConfigUpdate`` bytes: signatures are added around it,
so the hash every admin approves on the ledger stays the same while the file collects them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import identities_pb2
from google.protobuf.message import DecodeError

from . import channel, definition
from .channel import Admin
from .config import ConsortiumConfig
from .fabricbin import FabricBinaryError, FabricInstall
from .layout import Layout
from .material import peer_org_section, write_yaml

CONFIG_UPDATE = 2   # common.HeaderType.CONFIG_UPDATE


class OrgChangeError(RuntimeError):
    """An org change cannot be built, signed or submitted; the message says why."""


@dataclass(frozen=True)
class Update:
    """A config update envelope as read from its file."""

    path: Path
    channel: str
    digest: str                 # SHA-256 of the ConfigUpdate bytes
    signers: tuple[str, ...]    # MSP ids of the signatures it carries, in order
    added: tuple[str, ...]      # Application org groups the update creates
    orgs_after: tuple[str, ...] | None   # the channel's orgs after it, when it rewrites that list

    def removed(self, members: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """The orgs of ``members`` (the channel's orgs now) the update deletes."""
        return () if self.orgs_after is None else tuple(sorted(set(members) - set(self.orgs_after)))

    def describe(self) -> str:
        what = [f"adds {m}" for m in self.added] or (
            [f"leaves the channel with {', '.join(self.orgs_after)}"] if self.orgs_after else ["changes no org"])
        return (f"channel '{self.channel}' update {self.digest[:16]}…: {', '.join(what)}; signed by "
                f"{', '.join(self.signers) or 'nobody yet'}")


def read_update(path: Path) -> Update:
    """Parse an update envelope file (a config update for one channel) without any Fabric CLI."""
    try:
        env = common_pb2.Envelope.FromString(path.read_bytes())
        payload = common_pb2.Payload.FromString(env.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        cue = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
        update = configtx_pb2.ConfigUpdate.FromString(cue.config_update)
    except (OSError, ValueError, DecodeError) as exc:
        raise OrgChangeError(f"{path}: not a channel config update envelope ({exc})") from None
    if header.type != CONFIG_UPDATE or not cue.config_update:
        raise OrgChangeError(f"{path}: not a channel config update envelope (header type {header.type})")
    signers = []
    for sig in cue.signatures:
        creator = common_pb2.SignatureHeader.FromString(sig.signature_header).creator
        signers.append(identities_pb2.SerializedIdentity.FromString(creator).mspid)
    read, write = update.read_set.groups.get("Application"), update.write_set.groups.get("Application")
    before = set(read.groups) if read is not None else set()
    after = set(write.groups) if write is not None else set()
    # a group whose version moves is written whole: its org groups are then the complete new list
    rewritten = write is not None and (read is None or write.version > read.version)
    return Update(path=path, channel=update.channel_id, digest=hashlib.sha256(cue.config_update).hexdigest(),
                  signers=tuple(signers), added=tuple(sorted(after - before)),
                  orgs_after=tuple(sorted(after)) if rewritten else None)


def _app_groups(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["channel_group"]["groups"]["Application"]["groups"]


def channel_orgs(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, admin: Admin) -> list[str]:
    """The MSP ids of the channel's orgs now (its last config block, fetched as ``admin``)."""
    return sorted(_app_groups(channel.latest_config(fabric, config, layout, admin)[1]))


def org_group(fabric: FabricInstall, layout: Layout, d: definition.Definition) -> dict[str, Any]:
    """The org's config group as the channel holds it (configtxgen -printOrg of the definition, with its
    anchor peer): the same group a genesis block made from the definition has."""
    org = d.peer_org(layout.config)
    with channel.scratch_dir(layout, "org-") as work:
        msp = definition.unpack(d, work / "definition")
        write_yaml(work / "configtx.yaml", {"Organizations": [peer_org_section(org, msp)]})
        out = fabric.run("configtxgen", ["-configPath", str(work), "-printOrg", org.msp_id],
                         what=f"configtxgen -printOrg {org.msp_id}")
    group = json.JSONDecoder().raw_decode(out[out.index("{"):])[0]
    group["values"]["AnchorPeers"] = {"mod_policy": "Admins", "version": "0",
                                      "value": {"anchor_peers": [{"host": org.host, "port": org.peer.port}]}}
    return group


def propose_add(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, admin: Admin,
                d: definition.Definition, out: Path) -> Update:
    """Build (and sign as ``admin``) the update adding the org of definition ``d``; written to ``out``."""
    group = org_group(fabric, layout, d)

    def add(cfg: dict[str, Any]) -> None:
        if d.msp_id in _app_groups(cfg):
            raise OrgChangeError(f"{d.msp_id} is already an org of channel '{config.channel}'")
        _app_groups(cfg)[d.msp_id] = group
    return _build(fabric, config, layout, admin, add, out)


def propose_remove(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, admin: Admin,
                   msp_id: str, out: Path) -> Update:
    """Build (and sign as ``admin``) the update removing ``msp_id``'s org group; written to ``out``."""
    def remove(cfg: dict[str, Any]) -> None:
        if msp_id not in _app_groups(cfg):
            raise OrgChangeError(f"{msp_id} is not an org of channel '{config.channel}'")
        if len(_app_groups(cfg)) == 1:
            raise OrgChangeError(f"{msp_id} is the channel's last org")
        del _app_groups(cfg)[msp_id]
    return _build(fabric, config, layout, admin, remove, out)


def _build(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, admin: Admin, modify: Any,
           out: Path) -> Update:
    out.parent.mkdir(parents=True, exist_ok=True)
    channel.build_update(fabric, config, layout, modify, admin, out)
    channel.sign_update(fabric, layout, admin, out)
    return read_update(out)


def update_json(fabric: FabricInstall, layout: Layout, update: Update) -> dict[str, Any]:
    """The update's ``ConfigUpdate`` as JSON (configtxlator)."""
    cue = configtx_pb2.ConfigUpdateEnvelope.FromString(
        common_pb2.Payload.FromString(common_pb2.Envelope.FromString(update.path.read_bytes()).payload).data)
    with channel.scratch_dir(layout, "check-") as work:
        (work / "update.pb").write_bytes(cue.config_update)
        channel.translate(fabric, "proto_decode", "common.ConfigUpdate", work / "update.pb", work / "update.json")
        return json.loads((work / "update.json").read_text())


def check_adds(fabric: FabricInstall, layout: Layout, update: Update, d: definition.Definition) -> None:
    """Refuse unless ``update`` adds exactly the org of definition ``d``, with exactly its group, and
    removes none of the site's orgs."""
    if update.added != (d.msp_id,) or update.removed([o.msp_id for o in layout.config.orgs]):
        raise OrgChangeError(f"the update does not add just {d.msp_id}: {update.describe()}")
    written = update_json(fabric, layout, update)["write_set"]["groups"]["Application"]["groups"][d.msp_id]
    if written != org_group(fabric, layout, d):
        raise OrgChangeError(f"the update's {d.msp_id} group is not the one its definition makes "
                             "(other certificates, policies or anchor peer)")


def check_removes(update: Update, msp_id: str, members: list[str]) -> None:
    """Refuse unless ``update`` deletes exactly ``msp_id`` of ``members`` (the channel's orgs now)."""
    if update.removed(members) != (msp_id,) or update.added:
        raise OrgChangeError(f"the update does not remove just {msp_id}: {update.describe()}")


def admins_missing(members: list[str], signers: list[str] | tuple[str, ...]) -> int:
    """How many more org admins must sign for ``MAJORITY Admins`` of ``members`` (the Application orgs)."""
    have = len(set(signers) & set(members))
    return max(0, len(members) // 2 + 1 - have)


def submit(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, admin: Admin, update: Update,
           timeout: float = 30.0) -> tuple[int, Update]:
    """Submit ``update`` as ``admin`` once it carries (with ``admin``'s own) signatures of a majority of
    the channel's org admins; (config block number, the update as submitted, with every signature)."""
    before, cfg = channel.latest_config(fabric, config, layout, admin)
    members = sorted(_app_groups(cfg))
    missing = admins_missing(members, [*update.signers, admin.msp_id])
    if missing:
        unsigned = ", ".join(m for m in members if m not in update.signers and m != admin.msp_id)
        raise OrgChangeError(f"Fabric's channel admin policy (MAJORITY of {', '.join(members)}) needs {missing} "
                             f"more signature(s); not signed yet by {unsigned}")
    channel.submit_update(fabric, config, layout, admin, update.path)
    deadline = time.monotonic() + timeout
    while True:
        number, _ = channel.latest_config(fabric, config, layout, admin)
        if number > before:
            return number, Update(**{**update.__dict__, "signers": (*update.signers, admin.msp_id)})
        if time.monotonic() > deadline:
            raise FabricBinaryError(f"the update was submitted but no new config block appeared within "
                                    f"{timeout:.0f}s (last config block {number})")
        time.sleep(0.3)
