"""Chaincode-as-a-service material: per-org TLS (CA, server, peer-client certs) and the package.

Both hold private keys (the package's connection.json carries the peer's client key in PEM): the
keys and the package are 0600, their directories 0700.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from . import certs
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


def ensure_tls(dir: Path, org_domain: str, host: str = "127.0.0.1") -> CCTls:
    """A CA for the org's chaincode servers, a server cert (SANs the org's address, 127.0.0.1, localhost)
    and a client cert the peer presents (mutual TLS). Generated once."""
    tls = CCTls(dir)
    private_dir(dir)
    if all(p.exists() for p in (tls.ca, tls.server_cert, tls.server_key, tls.client_cert, tls.client_key)):
        return tls
    ca = certs.issue(certs.subject(f"chaincode-ca.{org_domain}", organization=org_domain), certs.CA,
                     validity=certs.Validity.days(3650))
    tls.ca.write_bytes(ca.cert_pem)

    def leaf(cn: str, profile: certs.Profile) -> certs.Credential:
        return certs.issue(certs.subject(cn, organization=org_domain), profile, ca, sans=certs.host_sans(host))

    leaf(f"chaincode.{org_domain}", certs.CHAINCODE_SERVER).write(tls.server_cert, tls.server_key)
    leaf(f"peer-client.{org_domain}", certs.CHAINCODE_CLIENT).write(tls.client_cert, tls.client_key)
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
