"""Test certificates: client identities (MSP dirs) and a TLS CA + server cert, made with cryptography."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn: str, key: ec.EllipticCurvePrivateKey, issuer_key: ec.EllipticCurvePrivateKey | None = None,
              issuer_cn: str | None = None, ca: bool = False, sans: list[str] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer_cn or cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        alt: list[x509.GeneralName] = []
        for s in sans:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                alt.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_msp(root: Path, cn: str = "User1@org1.example.com") -> Path:
    """A cryptogen-like MSP dir: ``signcerts/cert.pem`` + ``keystore/priv_sk`` (PKCS8 P-256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    (root / "signcerts").mkdir(parents=True)
    (root / "keystore").mkdir()
    (root / "signcerts" / "cert.pem").write_bytes(pem_cert(make_cert(cn, key)))
    (root / "keystore" / "priv_sk").write_bytes(pem_key(key))
    return root


def write_tls(root: Path, sans: list[str]) -> dict[str, Path]:
    """A TLS CA and a server cert/key signed by it, with ``sans``."""
    root.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_cert("tlsca.test", ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = make_cert(sans[0], srv_key, issuer_key=ca_key, issuer_cn="tlsca.test", sans=sans)
    paths = {"ca": root / "ca.pem", "cert": root / "server.pem", "key": root / "server.key"}
    paths["ca"].write_bytes(pem_cert(ca))
    paths["cert"].write_bytes(pem_cert(srv))
    paths["key"].write_bytes(pem_key(srv_key))
    return paths
