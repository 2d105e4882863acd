"""Client identity from a SerializedIdentity (Go cid package semantics)."""
from __future__ import annotations

import json
from typing import Optional

from cryptography import x509
from cryptography.x509.oid import NameOID
from fabric_protos.msp import identities_pb2

ATTR_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")

_GO_ORDER = [  # Go pkix.Name.String() renders RDNs in reverse of ToRDNSequence order
    (NameOID.COUNTRY_NAME, "C"), (NameOID.STATE_OR_PROVINCE_NAME, "ST"), (NameOID.LOCALITY_NAME, "L"),
    (NameOID.STREET_ADDRESS, "STREET"), (NameOID.POSTAL_CODE, "POSTALCODE"),
    (NameOID.ORGANIZATION_NAME, "O"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
    (NameOID.COMMON_NAME, "CN"), (NameOID.SERIAL_NUMBER, "SERIALNUMBER"),
]


def _esc(v: str) -> str:
    out = []
    for i, ch in enumerate(v):
        if ch in ',+"\\<>;' or (i == 0 and ch in " #") or (i == len(v) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def go_dn(name: x509.Name) -> str:
    """Render a name like Go's ``pkix.Name.String()`` for the standard attributes."""
    parts = []
    for oid, label in _GO_ORDER:
        vals = [a.value for a in name.get_attributes_for_oid(oid)]
        if vals:
            parts.append("+".join(f"{label}={_esc(str(v))}" for v in vals))
    return ",".join(reversed(parts))


class ClientIdentity:
    """The transaction creator: MSP id, X.509 cert, Fabric CA attributes, OUs."""

    def __init__(self, creator: bytes) -> None:
        sid = identities_pb2.SerializedIdentity()
        sid.ParseFromString(creator)
        self.msp_id: str = sid.mspid
        self.cert = x509.load_pem_x509_certificate(sid.id_bytes)
        self.id: str = f"x509::{go_dn(self.cert.subject)}::{go_dn(self.cert.issuer)}"
        self._attrs: dict[str, str] = {}
        try:
            ext = self.cert.extensions.get_extension_for_oid(ATTR_OID)
            data = json.loads(ext.value.value)
            self._attrs = {str(k): str(v) for k, v in (data.get("attrs") or {}).items()}
        except x509.ExtensionNotFound:
            pass

    def get_attribute(self, name: str) -> Optional[str]:
        return self._attrs.get(name)

    def assert_attribute_value(self, name: str, value: str) -> None:
        got = self._attrs.get(name)
        if got is None:
            raise PermissionError(f"attribute '{name}' was not found")
        if got != value:
            raise PermissionError(f"attribute '{name}' equals '{got}', not '{value}'")

    @property
    def ous(self) -> list[str]:
        return [a.value for a in self.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]

    def has_ou(self, ou: str) -> bool:
        return ou in self.ous
