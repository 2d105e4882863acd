"""Test certificates generated with cryptography."""
from __future__ import annotations

import datetime
import json
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_cert(cn: str, issuer=None, ous=(), attrs: Optional[dict] = None, ca=False, san_ip=False,
              attrs_raw: Optional[bytes] = None):
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "org1.example.com"),
                      *[x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, o) for o in ous],
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    icert, ikey = (issuer if issuer else (None, key))
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subj).issuer_name(icert.subject if icert else subj)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san_ip:
        import ipaddress
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    if attrs is not None or attrs_raw is not None:  # attrs_raw: the extension value as given
        raw = attrs_raw if attrs_raw is not None else json.dumps({"attrs": attrs}).encode()
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1"), raw), False)
    cert = b.sign(ikey, hashes.SHA256())
    return cert, key


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
