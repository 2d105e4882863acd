"""The org-side first step: one org initializes its own home and writes its public definition.

``init_peer_org`` runs on the org's own machine and touches nothing but ``orgs/<org>/`` (0700) and the
site's public files: cryptogen generates the org alone (its CA and TLS CA key pairs, an MSP with node
OUs, its peer, Admin, User1 and User2 identities; certificate SANs its address, 127.0.0.1 and
localhost), then the Auditor role identity, the TLS certificates of its Fabric CA and training node,
the Fabric CA's bootstrap admin password and server config -- every key file 0600, every directory
0700 (``private``). It ends by writing ``definition.json`` (certificates and endpoints only) and
importing it into the site's ``public/``. ``init_orderer_org`` does the same for the orderer org and
its orderers. Both are idempotent: an initialized home is left as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import ca, definition, identities
from .certs import host_sans
from .config import ConsortiumConfig, PeerOrg
from .fabricbin import FabricInstall
from .layout import Layout
from .material import write_yaml
from .private import private_dir, private_tree

USERS = 2   # User1: trainer, User2: spare client


def peer_org_crypto(org: PeerOrg) -> dict[str, Any]:
    """cryptogen's input for one peer org and nothing else."""
    return {"PeerOrgs": [{"Name": org.name, "Domain": org.domain, "EnableNodeOUs": True,
                          "Specs": [{"Hostname": org.peer.name, "SANS": host_sans(org.host)}],
                          "Users": {"Count": USERS}}]}


def orderer_org_crypto(config: ConsortiumConfig) -> dict[str, Any]:
    """cryptogen's input for the orderer org and its orderers."""
    oo = config.orderer_org
    return {"OrdererOrgs": [{"Name": oo.name, "Domain": oo.domain, "EnableNodeOUs": True,
                             "Specs": [{"Hostname": o.name, "SANS": host_sans(o.host)} for o in oo.orderers]}]}


def _cryptogen(fabric: FabricInstall, home: Path, crypto: dict[str, Any], what: str) -> bool:
    """Run cryptogen for one org into ``home/crypto`` once; True when it ran now."""
    out = home / "crypto"
    marker = out / ".complete"
    if marker.exists():
        return False
    private_dir(home)
    cfg = home / "crypto-config.yaml"
    write_yaml(cfg, crypto)
    fabric.run("cryptogen", ["generate", f"--config={cfg}", f"--output={out}"], what=f"cryptogen ({what})")
    private_tree(out)
    marker.write_text("ok\n")
    return True


def init_peer_org(fabric: FabricInstall, layout: Layout, org: PeerOrg) -> definition.Definition:
    """Initialize ``org``'s home (see the module) and import its definition; the definition."""
    home = layout.org_home(org)
    _cryptogen(fabric, home, peer_org_crypto(org), org.name)
    for user, role in identities.ROLE_USERS.items():
        identities.issue_role_identity(layout, org, user, role)
    ca.ensure_ca_material(layout, org)
    return _publish(layout, org.name, definition.peer_org_definition(layout, org))


def init_orderer_org(fabric: FabricInstall, layout: Layout) -> definition.Definition:
    """Initialize the orderer org's home and import its definition; the definition."""
    oo = layout.config.orderer_org
    _cryptogen(fabric, layout.orderer_home, orderer_org_crypto(layout.config), oo.name)
    return _publish(layout, oo.name, definition.orderer_org_definition(layout))


def _publish(layout: Layout, name: str, doc: dict[str, Any]) -> definition.Definition:
    """Write the org's own definition in its home, check it like any other, import it into ``public/``."""
    path = definition.write_definition(layout.own_definition(name), doc)
    checked = definition.load_definition(path, layout.config)
    definition.import_definition(layout, checked)
    return checked
