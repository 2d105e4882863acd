"""Test certificates, made by the product's builder: client identities (MSP dirs), TLS CAs and certs."""

from __future__ import annotations

from pathlib import Path

from fedfabric.network import certs
from fedfabric.network.certs import key_pem as pem_key  # noqa: F401 - for the tests' own keys


def tls_ca(cn: str) -> certs.Credential:
    """A self-signed CA, valid for a day."""
    return certs.issue(certs.subject(cn), certs.CA, validity=certs.Validity.days(1))


def tls_cert(cn: str, ca: certs.Credential, sans: list[str]) -> certs.Credential:
    """A TLS server/client certificate ``ca`` issued, with ``sans``."""
    return certs.issue(certs.subject(cn), certs.TLS, ca, sans=sans)


def write_msp(root: Path, cn: str = "User1@org1.example.com") -> Path:
    """A cryptogen-like MSP dir: ``signcerts/cert.pem`` + ``keystore/priv_sk`` (PKCS8 P-256)."""
    identity = certs.issue(certs.subject(cn, units=["client"]), certs.IDENTITY, validity=certs.Validity.days(1))
    (root / "signcerts").mkdir(parents=True)
    identity.write(root / "signcerts" / "cert.pem", root / "keystore" / "priv_sk")
    return root


def write_tls(root: Path, sans: list[str]) -> dict[str, Path]:
    """A TLS CA and a server cert/key signed by it, with ``sans``."""
    root.mkdir(parents=True, exist_ok=True)
    ca = tls_ca("tlsca.test")
    paths = {"ca": root / "ca.pem", "cert": root / "server.pem", "key": root / "server.key"}
    paths["ca"].write_bytes(ca.cert_pem)
    tls_cert(sans[0], ca, sans).write(paths["cert"], paths["key"])
    return paths
