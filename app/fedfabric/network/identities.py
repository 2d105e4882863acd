"""Client identities with a fedfabric role, signed by the org's CA (cryptogen cannot add attributes).

An auditor is a *client* (node OU ``client``) whose certificate carries the Fabric CA attribute
extension (OID 1.2.3.4.5.6.7.8.1, JSON ``{"attrs": {"fedfabric.role": "auditor", ...}}``) -- the same
encoding a Fabric CA enrollment with ``--id.attrs fedfabric.role=auditor:ecert`` produces.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import certs
from .config import PeerOrg
from .layout import Layout
from .private import private_dir, private_tree

ROLE_USERS = {"Auditor": "auditor"}   # user name -> fedfabric.role


def issue_role_identity(layout: Layout, org: PeerOrg, user: str, role: str) -> Path:
    """Write ``users/<user>@<domain>/msp`` (signcerts, keystore, cacerts, tlscacerts, config.yaml); the key
    0600, every directory of the user's tree 0700."""
    template = layout.user_msp(org, "User1")
    msp = layout.user_msp(org, user)
    if (msp / "signcerts" / "cert.pem").exists():
        return msp
    cn = f"{user}@{org.domain}"
    identity = certs.issue(certs.subject(cn, units=["client"], cryptogen_place=True), certs.IDENTITY,
                           certs.Credential.load(layout.org_ca_cert(org), layout.org_ca_key(org)),
                           attributes={"hf.EnrollmentID": cn, "hf.Type": "client", "fedfabric.role": role})
    tmp = msp.with_name("msp.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    private_dir(tmp)
    for sub in ("cacerts", "tlscacerts"):
        shutil.copytree(template / sub, tmp / sub)
    shutil.copyfile(template / "config.yaml", tmp / "config.yaml")
    (tmp / "signcerts").mkdir(parents=True)
    identity.write(tmp / "signcerts" / "cert.pem", tmp / "keystore" / "priv_sk")
    private_tree(tmp)
    tmp.rename(msp)
    return msp
