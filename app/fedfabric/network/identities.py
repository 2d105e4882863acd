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
from .private import private_dir, private_tree, write_private

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
    write_client_msp(msp, template, identity.cert_pem, identity.key_pem)
    return msp


def write_client_msp(msp: Path, template: Path, cert_pem: bytes, key_pem: bytes) -> None:
    """A client's MSP directory beside the org's template user's: its signcerts and keystore (the key
    0600), the template's cacerts, tlscacerts and NodeOUs config.yaml. Written aside and renamed into
    place (an MSP is complete or absent; one without a certificate is replaced); every directory of the
    user's tree 0700."""
    tmp = msp.with_name(msp.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    private_dir(tmp)
    for sub in ("cacerts", "tlscacerts"):
        shutil.copytree(template / sub, tmp / sub)
    shutil.copyfile(template / "config.yaml", tmp / "config.yaml")
    (tmp / "signcerts").mkdir()
    (tmp / "signcerts" / "cert.pem").write_bytes(cert_pem)
    write_private(tmp / "keystore" / "priv_sk", key_pem)
    private_tree(tmp)
    shutil.rmtree(msp, ignore_errors=True)
    tmp.rename(msp)
