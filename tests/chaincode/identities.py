"""Test identities: an org CA per MSP and client certs with node OUs / fedfabric.role attributes."""
from __future__ import annotations

import datetime
import json
from functools import lru_cache
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fabshim.memstub import serialized_identity

ATTR_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")  # Fabric CA attribute extension


def _name(org: str, cn: str, ous: tuple[str, ...] = ()) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      *[x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, o) for o in ous],
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@lru_cache(maxsize=None)
def _ca(msp: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(msp.lower(), f"ca.{msp.lower()}")
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


@lru_cache(maxsize=None)
def creator(msp: str, cn: str, ous: tuple[str, ...] = (), attrs: Optional[tuple[tuple[str, str], ...]] = None) -> bytes:
    """SerializedIdentity bytes for a client cert issued by ``msp``'s CA."""
    ca_cert, ca_key = _ca(msp)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(msp.lower(), cn, ous)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650)))
    if attrs is not None:
        b = b.add_extension(x509.UnrecognizedExtension(ATTR_OID, json.dumps({"attrs": dict(attrs)}).encode()), False)
    cert = b.sign(ca_key, hashes.SHA256())
    return serialized_identity(msp, cert.public_bytes(serialization.Encoding.PEM))


def admin(msp: str) -> bytes:
    return creator(msp, f"Admin@{msp}", ("admin",))


def trainer(msp: str) -> bytes:
    return creator(msp, f"User1@{msp}", ("client",))


def auditor(msp: str) -> bytes:
    return creator(msp, f"Auditor@{msp}", ("client",), (("fedfabric.role", "auditor"),))


def peer(msp: str) -> bytes:
    return creator(msp, f"peer0.{msp}", ("peer",))
