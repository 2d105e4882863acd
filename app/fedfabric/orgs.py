"""Admitting and removing an org by governance: the channel update and the ledger's decision, together.

Each step is one org admin's, on that org's own site (run directory), and pairs a Fabric action with
a contract transaction, so the ledger records who agreed to what:

* ``propose_add`` / ``propose_remove`` -- build the channel config update (from the new org's
  definition, or dropping an org), sign it, and propose it on the ledger by its hash
  (``propose_membership``);
* ``sign`` -- check the update against the ledger's proposal (same hash; for an admission, exactly the
  org of the definition), sign it, approve it on the ledger (``approve_membership``); the contract
  applies the change once the approvers hold the consortium's quorum of stake;
* ``submit`` -- refuse unless the ledger applied the proposal and the update carries signatures of a
  majority of the channel's org admins (Fabric's own rule), submit it to the orderer, and record on the
  ledger the orgs whose admins signed it and its config block (``record_channel_update``).

A site that proposes, signs or submits an admission imports the new org's definition (its view of the
consortium now includes the org, so its next chaincode deploy approves a definition with it); one
that signs or submits a removal retires the org. A member that took no part runs ``network.sh org
import`` (or ``org retire``) itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import FedFabricClient, Written
from .network import channel, definition, orgchange
from .network.config import ConsortiumConfig, PeerOrg
from .network.definition import Definition
from .network.fabricbin import FabricInstall
from .network.layout import Layout
from .network.orgchange import OrgChangeError, Update


class MembershipClient(FedFabricClient):
    """The contract's membership transactions (``fedfabric_cc.membership``)."""

    def propose_membership(self, proposal_id: str, action: str, msp_id: str, name: str, definition_sha256: str,
                           update_sha256: str, reason: str) -> Written:
        return self._submit("propose_membership", proposal_id, action, msp_id, name, definition_sha256,
                            update_sha256, reason)

    def approve_membership(self, proposal_id: str, update_sha256: str) -> Written:
        return self._submit("approve_membership", proposal_id, update_sha256)

    def record_channel_update(self, proposal_id: str, update_sha256: str, signers: list[str],
                              config_block: int) -> Written:
        return self._submit("record_channel_update", proposal_id, update_sha256, signers, str(config_block))

    def get_membership(self, proposal_id: str) -> dict:
        return self._evaluate("get_membership", proposal_id)

    def list_memberships(self) -> list[dict]:
        return self._evaluate("list_memberships")


@dataclass(frozen=True)
class Site:
    """One org acting from its own run directory: its view of the consortium and its admin identity."""

    fabric: FabricInstall
    layout: Layout
    org: PeerOrg

    @property
    def config(self) -> ConsortiumConfig:
        return self.layout.config

    @property
    def admin(self) -> channel.Admin:
        return channel.org_admin(self.layout, self.org)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _definition(site: Site, path: Path) -> Definition:
    return definition.load_definition(path, site.config)


def propose_add(site: Site, client: MembershipClient, definition_file: Path, proposal_id: str, out: Path,
                reason: str) -> tuple[Update, dict]:
    """Build and sign the update admitting the org of ``definition_file``; propose it on the ledger."""
    d = _definition(site, definition_file)
    update = orgchange.propose_add(site.fabric, site.config, site.layout, site.admin, d, out)
    prop = client.propose_membership(proposal_id, "add", d.msp_id, d.name, file_digest(definition_file),
                                     update.digest, reason).value
    _adopt(site, prop, d)
    return update, prop


def propose_remove(site: Site, client: MembershipClient, msp_id: str, proposal_id: str, out: Path,
                   reason: str) -> tuple[Update, dict]:
    """Build and sign the update removing ``msp_id``; propose it on the ledger."""
    org = site.config.org(msp_id)
    update = orgchange.propose_remove(site.fabric, site.config, site.layout, site.admin, org.msp_id, out)
    known = site.layout.definition_file(org.name)
    digest = file_digest(known) if known.exists() else hashlib.sha256(b"").hexdigest()
    prop = client.propose_membership(proposal_id, "remove", org.msp_id, org.name, digest, update.digest,
                                     reason).value
    return update, prop


def _checked(site: Site, client: MembershipClient, proposal_id: str, update_file: Path,
             definition_file: Path | None) -> tuple[dict, Update, Definition | None]:
    """The ledger's proposal, the update file and (admissions) the definition, checked against each other."""
    prop = client.get_membership(proposal_id)
    update = orgchange.read_update(update_file)
    if update.digest != prop["update_sha256"]:
        raise OrgChangeError(f"{update_file} is update {update.digest[:16]}…, but proposal {proposal_id} is about "
                             f"{prop['update_sha256'][:16]}…")
    if update.channel != site.config.channel:
        raise OrgChangeError(f"{update_file} updates channel '{update.channel}', not '{site.config.channel}'")
    if prop["action"] == "remove":
        members = orgchange.channel_orgs(site.fabric, site.config, site.layout, site.admin)
        orgchange.check_removes(update, prop["msp_id"], members)
        return prop, update, None
    if definition_file is None:
        raise OrgChangeError(f"proposal {proposal_id} admits {prop['msp_id']}: give its definition "
                             "(--definition FILE) so the update can be checked against it")
    if file_digest(definition_file) != prop["definition_sha256"]:
        raise OrgChangeError(f"{definition_file} is not the definition proposal {proposal_id} names "
                             f"(SHA-256 {prop['definition_sha256'][:16]}…)")
    d = _definition(site, definition_file)
    orgchange.check_adds(site.fabric, site.layout, update, d)
    return prop, update, d


def _adopt(site: Site, prop: dict, d: Definition | None) -> None:
    """This site's view of the consortium follows the change: import the admitted org, retire the removed."""
    if d is not None:
        definition.import_definition(site.layout, d)
    elif prop["action"] == "remove":
        names = [o.name for o in site.config.orgs if o.msp_id == prop["msp_id"]]
        definition.retire(site.layout, names[0] if names else prop["name"])


def sign(site: Site, client: MembershipClient, proposal_id: str, update_file: Path,
         definition_file: Path | None = None) -> tuple[Update, dict]:
    """Check, sign and approve a proposed org change as this org's admin."""
    prop, update, d = _checked(site, client, proposal_id, update_file, definition_file)
    if prop["status"] != "pending":
        raise OrgChangeError(f"proposal {proposal_id} is {prop['status']}: nothing to approve")
    if site.org.msp_id in update.signers:
        raise OrgChangeError(f"{site.org.msp_id} already signed {update_file}")
    channel.sign_update(site.fabric, site.layout, site.admin, update_file)
    prop = client.approve_membership(proposal_id, update.digest).value
    _adopt(site, prop, d)
    return orgchange.read_update(update_file), prop


def submit(site: Site, client: MembershipClient, proposal_id: str, update_file: Path,
           definition_file: Path | None = None) -> tuple[int, Update, dict]:
    """Submit an approved, signed org change to the orderer and record its signers on the ledger."""
    prop, update, d = _checked(site, client, proposal_id, update_file, definition_file)
    if prop["status"] != "applied":
        raise OrgChangeError(f"proposal {proposal_id} is {prop['status']}: approved by "
                             f"{', '.join(prop['approvals'])}, who do not hold the consortium's quorum of stake yet")
    block, submitted = orgchange.submit(site.fabric, site.config, site.layout, site.admin, update)
    signers = sorted(set(submitted.signers))
    prop = client.record_channel_update(proposal_id, update.digest, signers, block).value
    _adopt(site, prop, d)
    return block, submitted, prop


def summary(prop: dict[str, Any]) -> str:
    """One line about a membership proposal."""
    cu = prop.get("channel_update")
    channel_part = (f"; channel update in config block {cu['config_block']}, signed by {', '.join(cu['signers'])}"
                    if cu else "")
    return (f"proposal {prop['proposal_id']}: {prop['action']} {prop['msp_id']}, {prop['status']}, approved by "
            f"{', '.join(prop['approvals'])}{channel_part}")
