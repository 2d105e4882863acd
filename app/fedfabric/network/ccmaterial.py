"""Chaincode-as-a-service material: per-org TLS (CA, server, peer-client certs) and the package.

Both hold private keys (the package's connection.json carries the peer's client key in PEM): the
keys and the package are 0600, their directories 0700.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import ipaddress
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .private import private_dir, write_private


@dataclass(frozen=True)
class CCTls:
    """Files of one org's chaincode TLS material."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.dir / "client.key"


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


def ensure_tls(dir: Path, org_domain: str, host: str = "127.0.0.1") -> CCTls:
    """A CA for the org's chaincode servers, a server cert (SANs the org's address, 127.0.0.1, localhost)
    and a client cert the peer presents (mutual TLS). Generated once."""
    tls = CCTls(dir)
    private_dir(dir)
    if tls.client_key.exists():
        return tls
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"chaincode-ca.{org_domain}", org_domain)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(cn: str, usage: ExtendedKeyUsageOID, cert_path: Path, key_path: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn, org_domain)).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(later)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), *(
                    x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(("127.0.0.1", host)))]),
                    critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)

    leaf(f"chaincode.{org_domain}", ExtendedKeyUsageOID.SERVER_AUTH, tls.server_cert, tls.server_key)
    leaf(f"peer-client.{org_domain}", ExtendedKeyUsageOID.CLIENT_AUTH, tls.client_cert, tls.client_key)
    return tls


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A reproducible .tar.gz (fixed mtimes), so the same inputs give the same package id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def write_package(path: Path, label: str, address: str, tls: CCTls) -> Path:
    """The ``ccaas`` package: metadata.json + code.tar.gz{connection.json} (PEM strings inline), 0600."""
    connection = {
        "address": address,
        "dial_timeout": "10s",
        "tls_required": True,
        "client_auth_required": True,
        "root_cert": tls.ca.read_text(),
        "client_cert": tls.client_cert.read_text(),
        "client_key": tls.client_key.read_text(),
    }
    code = _tar_gz({"connection.json": json.dumps(connection, indent=2, sort_keys=True).encode()})
    metadata = json.dumps({"type": "ccaas", "label": label}, sort_keys=True).encode()
    write_private(path, _tar_gz({"metadata.json": metadata, "code.tar.gz": code}))
    return path
