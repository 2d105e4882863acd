"""The one certificate builder: what each profile puts in a certificate, SANs, validity, key files."""

from __future__ import annotations

import datetime as dt
import json
import stat
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedfabric.network import certs


def _ext(cert: x509.Certificate, kind: type) -> x509.Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _key_usage(cert: x509.Certificate) -> set[str]:
    """The bits set in the (critical) KeyUsage extension; empty without one."""
    ku = _ext(cert, x509.KeyUsage)
    if ku is None:
        return set()
    assert ku.critical
    return {n for n in ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                        "key_agreement", "key_cert_sign", "crl_sign") if getattr(ku.value, n)}


@pytest.fixture(scope="module")
def ca() -> certs.Credential:
    return certs.issue(certs.subject("chaincode-ca.org1.example.com", organization="org1.example.com"), certs.CA,
                       validity=certs.Validity.days(3650))


@pytest.fixture(scope="module")
def ca_with_ski() -> certs.Credential:
    """Like cryptogen's CAs, whose subject key identifier the certificates they sign name."""
    return certs.issue(certs.subject("tlsca.org1.example.com", organization="org1.example.com",
                                     cryptogen_place=True),
                       replace(certs.CA, subject_key_id=True), validity=certs.Validity.days(3650))


def test_self_signed_ca(ca) -> None:
    c = ca.cert
    assert c.issuer == c.subject and c.subject.rfc4514_string() == ("CN=chaincode-ca.org1.example.com,"
                                                                      "O=org1.example.com")
    c.verify_directly_issued_by(c)
    assert isinstance(c.public_key(), ec.EllipticCurvePublicKey) and c.public_key().curve.name == "secp256r1"
    assert c.signature_hash_algorithm.name == "sha256"
    assert _ext(c, x509.BasicConstraints).value.ca and _ext(c, x509.BasicConstraints).critical
    assert _key_usage(c) == {"digital_signature", "key_cert_sign", "crl_sign"}
    assert _ext(c, x509.ExtendedKeyUsage) is None and _ext(c, x509.SubjectKeyIdentifier) is None
    assert (c.not_valid_after_utc - c.not_valid_before_utc) == dt.timedelta(days=3650)
    assert c.not_valid_before_utc <= dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=4)


def test_self_signed_needs_a_validity() -> None:
    with pytest.raises(ValueError, match="self-signed certificate needs a validity"):
        certs.issue(certs.subject("x"), certs.CA)


def test_tls_cert_with_sans_and_key_ids(ca_with_ski) -> None:
    tls = certs.issue(certs.subject("fl-node.org1.example.com", cryptogen_place=True), certs.TLS, ca_with_ski,
                      sans=[*certs.host_sans("10.0.0.5"), "fl-node.org1.example.com", "localhost"])
    c = tls.cert
    c.verify_directly_issued_by(ca_with_ski.cert)
    assert c.subject.rfc4514_string() == "CN=fl-node.org1.example.com,L=San Francisco,ST=California,C=US"
    assert _key_usage(c) == {"digital_signature", "key_encipherment"}
    assert list(_ext(c, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH,
                                                          ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _ext(c, x509.BasicConstraints).value.ca is False and _ext(c, x509.BasicConstraints).critical
    assert _ext(c, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(c.public_key())
    assert (_ext(c, x509.AuthorityKeyIdentifier).value.key_identifier
            == _ext(ca_with_ski.cert, x509.SubjectKeyIdentifier).value.digest)
    sans = _ext(c, x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "fl-node.org1.example.com"]  # each once
    assert c.not_valid_after_utc == ca_with_ski.cert.not_valid_after_utc     # within the issuer
    assert c.not_valid_before_utc >= ca_with_ski.cert.not_valid_before_utc


def test_identity_with_node_ou_and_attributes(ca_with_ski) -> None:
    ident = certs.issue(certs.subject("Auditor@org1.example.com", units=["client"], cryptogen_place=True),
                        certs.IDENTITY, ca_with_ski, attributes={"hf.Type": "client", "fedfabric.role": "auditor"})
    c = ident.cert
    assert [a.value for a in c.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == ["client"]
    assert _key_usage(c) == {"digital_signature"}
    assert _ext(c, x509.ExtendedKeyUsage) is None and _ext(c, x509.SubjectKeyIdentifier) is None
    assert _ext(c, x509.AuthorityKeyIdentifier) is not None and _ext(c, x509.SubjectAlternativeName) is None
    raw = c.extensions.get_extension_for_oid(certs.ATTRIBUTE_OID).value.value
    assert raw == b'{"attrs": {"fedfabric.role": "auditor", "hf.Type": "client"}}'
    assert json.loads(raw)["attrs"]["fedfabric.role"] == "auditor"


@pytest.mark.parametrize("profile, purpose", [(certs.CHAINCODE_SERVER, ExtendedKeyUsageOID.SERVER_AUTH),
                                              (certs.CHAINCODE_CLIENT, ExtendedKeyUsageOID.CLIENT_AUTH)])
def test_chaincode_leaves(ca, profile, purpose) -> None:
    leaf = certs.issue(certs.subject("chaincode.org1.example.com", organization="org1.example.com"), profile, ca,
                       sans=certs.host_sans("127.0.0.1"))
    c = leaf.cert
    c.verify_directly_issued_by(ca.cert)
    assert list(_ext(c, x509.ExtendedKeyUsage).value) == [purpose]
    assert _ext(c, x509.KeyUsage) is None and _ext(c, x509.BasicConstraints) is None
    assert _ext(c, x509.AuthorityKeyIdentifier) is None          # its CA has no subject key identifier
    assert [str(n.value) for n in _ext(c, x509.SubjectAlternativeName).value] == ["127.0.0.1", "localhost"]
    assert c.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_credential_write_and_load(tmp_path, ca) -> None:
    d = tmp_path / "a" / "tls"
    ca.write(d / "ca.crt", d / "ca.key")
    assert stat.S_IMODE((d / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert (d / "ca.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Fabric's
    back = certs.Credential.load(d / "ca.crt", d / "ca.key")
    assert back.cert == ca.cert and back.key.private_numbers() == ca.key.private_numbers()
    assert "PRIVATE" not in repr(back)
