"""Client identities with a fedfabric role, signed by the org's CA (cryptogen cannot add attributes).

An auditor is a *client* (node OU ``client``) whose certificate carries the Fabric CA attribute
extension (OID 1.2.3.4.5.6.7.8.1, JSON ``{"attrs": {"fedfabric.role": "auditor", ...}}``) -- the same
encoding a Fabric CA enrollment with ``--id.attrs fedfabric.role=auditor:ecert`` produces.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .config import PeerOrg
from .layout import Layout
from .private import private_dir, private_tree, write_private

ATTRIBUTE_OID = ObjectIdentifier("1.2.3.4.5.6.7.8.1")
ROLE_USERS = {"Auditor": "auditor"}   # user name -> fedfabric.role


def _load_ca(layout: Layout, org: PeerOrg) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_dir = layout.org_dir(org) / "ca"
    cert = x509.load_pem_x509_certificate((ca_dir / f"ca.{org.domain}-cert.pem").read_bytes())
    key = serialization.load_pem_private_key((ca_dir / "priv_sk").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def issue_role_identity(layout: Layout, org: PeerOrg, user: str, role: str) -> Path:
    """Write ``users/<user>@<domain>/msp`` (signcerts, keystore, cacerts, tlscacerts, config.yaml); the key
    0600, every directory of the user's tree 0700."""
    template = layout.user_msp(org, "User1")
    msp = layout.user_msp(org, user)
    if (msp / "signcerts" / "cert.pem").exists():
        return msp
    ca_cert, ca_key = _load_ca(layout, org)
    key = ec.generate_private_key(ec.SECP256R1())
    cn = f"{user}@{org.domain}"
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])
    attrs = json.dumps({"attrs": {"hf.EnrollmentID": cn, "hf.Type": "client", "fedfabric.role": role}},
                       sort_keys=True).encode()
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    # Fabric's MSP checks the chain at this cert's NotBefore + 1 s: it must not precede the CA's NotBefore
    now = max(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5), ca_cert.not_valid_before_utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(ca_cert.not_valid_after_utc)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                           critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .add_extension(x509.UnrecognizedExtension(ATTRIBUTE_OID, attrs), critical=False)
            .sign(ca_key, hashes.SHA256()))
    tmp = msp.with_name("msp.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    private_dir(tmp)
    for sub in ("cacerts", "tlscacerts"):
        shutil.copytree(template / sub, tmp / sub)
    shutil.copyfile(template / "config.yaml", tmp / "config.yaml")
    (tmp / "signcerts").mkdir(parents=True)
    (tmp / "signcerts" / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(tmp / "keystore" / "priv_sk", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    private_tree(tmp)
    tmp.rename(msp)
    return msp
