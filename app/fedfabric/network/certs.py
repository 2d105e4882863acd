"""Every X.509 certificate fedfabric makes itself: one builder, :func:`issue`, with a :class:`Profile`.

cryptogen makes each org's CA and TLS CA and the identities of its nodes and first users; the org's
Fabric CA issues the users enrolled later. The rest is made here, each with a new P-256 key and a
SHA-256 signature:

=============================================  ====================  ==================================
certificate                                    profile               signed by
=============================================  ====================  ==================================
a role identity (``Auditor``, node OU client)  :data:`IDENTITY`      the org's CA (identities.py)
the Fabric CA's and the training node's TLS    :data:`TLS`           the org's TLS CA (ca.py)
the org's chaincode-server CA                  :data:`CA`            itself (ccmaterial.py)
a chaincode server / the peer as its client    :data:`CHAINCODE_*`   the chaincode CA (ccmaterial.py)
=============================================  ====================  ==================================

A certificate signed by an issuer that has a subject key identifier names it (authority key
identifier); by default it is valid from now until its issuer expires (:meth:`Validity.within`).
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from .private import write_private

ATTRIBUTE_OID = ObjectIdentifier("1.2.3.4.5.6.7.8.1")   # Fabric CA's attribute extension
CLOCK_SKEW = dt.timedelta(minutes=5)                    # a new certificate is valid this long before now
_CRYPTOGEN_PLACE = ((NameOID.COUNTRY_NAME, "US"), (NameOID.STATE_OR_PROVINCE_NAME, "California"),
                    (NameOID.LOCALITY_NAME, "San Francisco"))


class KeyUse(enum.Enum):
    """A bit of the KeyUsage extension (the name of ``x509.KeyUsage``'s argument)."""

    DIGITAL_SIGNATURE = "digital_signature"
    KEY_ENCIPHERMENT = "key_encipherment"
    KEY_CERT_SIGN = "key_cert_sign"
    CRL_SIGN = "crl_sign"


class Auth(enum.Enum):
    """A purpose of the ExtendedKeyUsage extension."""

    SERVER = ExtendedKeyUsageOID.SERVER_AUTH
    CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH


@dataclass(frozen=True)
class Profile:
    """What a certificate may be used for."""

    uses: frozenset[KeyUse] = frozenset()   # KeyUsage, critical; empty: no KeyUsage extension
    auth: tuple[Auth, ...] = ()             # ExtendedKeyUsage; empty: none
    ca: bool | None = False                 # BasicConstraints, critical; None: none
    subject_key_id: bool = False            # SubjectKeyIdentifier (SHA-1 of the public key)


CA = Profile(frozenset({KeyUse.DIGITAL_SIGNATURE, KeyUse.KEY_CERT_SIGN, KeyUse.CRL_SIGN}), ca=True)
IDENTITY = Profile(frozenset({KeyUse.DIGITAL_SIGNATURE}))   # an MSP signing identity, as cryptogen's
TLS = Profile(frozenset({KeyUse.DIGITAL_SIGNATURE, KeyUse.KEY_ENCIPHERMENT}), (Auth.SERVER, Auth.CLIENT),
              subject_key_id=True)
CHAINCODE_SERVER = Profile(auth=(Auth.SERVER,), ca=None)
CHAINCODE_CLIENT = Profile(auth=(Auth.CLIENT,), ca=None)


@dataclass(frozen=True)
class Validity:
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def days(cls, days: int) -> Validity:
        """``days`` long, from now less :data:`CLOCK_SKEW`."""
        start = dt.datetime.now(dt.timezone.utc) - CLOCK_SKEW
        return cls(start, start + dt.timedelta(days=days))

    @classmethod
    def within(cls, issuer: x509.Certificate) -> Validity:
        """From now less :data:`CLOCK_SKEW` until ``issuer`` expires, and never from before the issuer's
        own start: Fabric's MSP checks the chain at the certificate's NotBefore + 1 s."""
        start = max(dt.datetime.now(dt.timezone.utc) - CLOCK_SKEW, issuer.not_valid_before_utc)
        return cls(start, issuer.not_valid_after_utc)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM, what Fabric's keystores hold."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class Credential:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> Credential:
        """An issuer from its files (an EC key, as cryptogen writes them)."""
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file}: not an EC private key")
        return cls(x509.load_pem_x509_certificate(cert_file.read_bytes()), key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)

    def write(self, cert_file: Path, key_file: Path) -> None:
        """The key 0600 in an owner-only directory, then the certificate."""
        write_private(key_file, self.key_pem)
        cert_file.write_bytes(self.cert_pem)


def subject(common_name: str, *, organization: str | None = None, units: Sequence[str] = (),
            cryptogen_place: bool = False) -> x509.Name:
    """C=US, ST=California, L=San Francisco as cryptogen writes them (with ``cryptogen_place``), then
    O, one OU per unit (a node OU: client, peer, admin, orderer), and CN."""
    attrs = [x509.NameAttribute(oid, value) for oid, value in (_CRYPTOGEN_PLACE if cryptogen_place else ())]
    if organization is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit) for unit in units]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def host_sans(host: str) -> list[str]:
    """What clients dial an org's nodes at: its address, and the loopback names for same-host clients."""
    return list(dict.fromkeys([host, "127.0.0.1", "localhost"]))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue(name: x509.Name, profile: Profile, issuer: Credential | None = None, *,
          sans: Sequence[str] = (), attributes: Mapping[str, str] | None = None,
          validity: Validity | None = None) -> Credential:
    """A new P-256 key and its certificate for ``name``, signed by ``issuer`` (None: self-signed).

    ``sans``: IP addresses and DNS names, in order, each once. ``attributes``: Fabric CA's attribute
    extension (JSON ``{"attrs": {...}}``, what the chaincode reads roles from). ``validity``: by default
    :meth:`Validity.within` the issuer; a self-signed certificate must give one.
    """
    if validity is None:
        if issuer is None:
            raise ValueError("a self-signed certificate needs a validity")
        validity = Validity.within(issuer.cert)
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.cert.subject if issuer else name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(validity.not_before).not_valid_after(validity.not_after))
    if profile.uses:
        bits = {use.value: use in profile.uses for use in KeyUse}
        b = b.add_extension(x509.KeyUsage(content_commitment=False, data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False, **bits), critical=True)
    if profile.auth:
        b = b.add_extension(x509.ExtendedKeyUsage([a.value for a in profile.auth]), critical=False)
    if profile.ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=profile.ca, path_length=None), critical=True)
    if profile.subject_key_id:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer is not None:
        try:
            ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            pass
        else:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([_general_name(s) for s in dict.fromkeys(sans)]),
                            critical=False)
    if attributes is not None:
        raw = json.dumps({"attrs": dict(attributes)}, sort_keys=True).encode()
        b = b.add_extension(x509.UnrecognizedExtension(ATTRIBUTE_OID, raw), critical=False)
    return Credential(b.sign(issuer.key if issuer else key, hashes.SHA256()), key)
