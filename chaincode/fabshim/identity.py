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


class IdentityError(ValueError):
    """The creator's identity cannot be read (like an error from Go's ``cid.New``)."""


def _attr_extension(cert: x509.Certificate) -> Optional[bytes]:
    """The raw value of the Fabric CA attribute extension, None if the certificate has none."""
    try:
        return cert.extensions.get_extension_for_oid(ATTR_OID).value.value
    except x509.ExtensionNotFound:
        return None


class _Obj(list):
    """A JSON object as its ordered (key, value) pairs."""


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _load(raw: bytes) -> object:
    """JSON like Go reads it: invalid UTF-8 becomes U+FFFD, NaN/Infinity are refused, objects keep order."""
    try:
        return json.loads(raw.decode("utf-8", "replace"), object_pairs_hook=_Obj, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _attr_error(f"not JSON ({type(exc).__name__})") from None


def _merge_attrs(into: Optional[dict[str, str]], value: object) -> Optional[dict[str, str]]:
    """Go decoding one ``attrs`` member into a ``map[string]string``: null resets, objects merge."""
    if value is None:
        return None
    if not isinstance(value, _Obj):
        raise _attr_error("'attrs' is not a JSON object")
    out = {} if into is None else into
    for name, v in value:
        if v is not None and not isinstance(v, str):
            raise _attr_error(f"attribute values must be strings, got {type(v).__name__}")
        out[name] = v if v is not None else ""
    return out


def parse_attributes(raw: Optional[bytes]) -> dict[str, str]:
    """Attributes from the extension's JSON ``{"attrs": {name: value}}``, as Go's attrmgr reads it.

    No extension, ``null``, ``{}`` or ``{"attrs": null}`` mean no attributes; the member name
    matches case-insensitively, as Go's ``encoding/json`` does. What Go's ``json.Unmarshal`` into
    ``struct{Attrs map[string]string}`` refuses (not JSON, not an object, ``attrs`` not an object,
    a value that is not a string) raises :class:`IdentityError`: Go's ``cid.New`` fails then, so
    every identity call fails, not only attribute look-ups. Errors never quote the content.
    """
    if raw is None:
        return {}
    data = _load(raw)
    if data is None:
        return {}
    if not isinstance(data, _Obj):
        raise _attr_error(f"expected a JSON object, got {type(data).__name__}")
    attrs: Optional[dict[str, str]] = None
    for key, value in data:
        if key.casefold() == "attrs":
            attrs = _merge_attrs(attrs, value)
    return attrs or {}


def _attr_error(why: str) -> IdentityError:
    return IdentityError("failed to get attributes from the transaction invoker's certificate: "
                         f"failed to unmarshal attributes from certificate: {why}")


class ClientIdentity:
    """The transaction creator: MSP id, X.509 cert, Fabric CA attributes, OUs.

    Raises :class:`IdentityError` for a malformed attribute extension, as Go's ``cid.New`` does.
    """

    def __init__(self, creator: bytes) -> None:
        sid = identities_pb2.SerializedIdentity()
        sid.ParseFromString(creator)
        self.msp_id: str = sid.mspid
        self.cert = x509.load_pem_x509_certificate(sid.id_bytes)
        self.id: str = f"x509::{go_dn(self.cert.subject)}::{go_dn(self.cert.issuer)}"
        self._attrs: dict[str, str] = parse_attributes(_attr_extension(self.cert))

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
