"""Signing identity of a Fabric client: an MSP id, an X.509 certificate and its EC private key."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.msp import identities_pb2

log = logging.getLogger(__name__)

#: Group orders of the curves Fabric's BCCSP accepts, for low-S normalisation.
CURVE_ORDERS: dict[str, int] = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973", 16),
}


class IdentityError(ValueError):
    """An MSP directory or key/certificate pair that cannot be used as a signing identity."""


def to_low_s(r: int, s: int, order: int) -> tuple[int, int]:
    """Fabric rejects high-S signatures: replace ``s`` by ``order - s`` when ``s > order/2``."""
    return (r, order - s) if s > order // 2 else (r, s)


@dataclass(frozen=True, eq=False)
class Identity:
    """A client identity that signs proposals, transactions and Gateway requests."""

    msp_id: str
    cert_pem: bytes = field(repr=False)
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not self.msp_id:
            raise IdentityError("msp_id must not be empty")
        if not isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            raise IdentityError("private key is not an EC key (Fabric needs ECDSA P-256/P-384)")
        if self.private_key.curve.name not in CURVE_ORDERS:
            raise IdentityError(f"unsupported curve {self.private_key.curve.name}")
        try:
            cert = x509.load_pem_x509_certificate(self.cert_pem)
        except ValueError as exc:
            raise IdentityError(f"certificate is not valid PEM X.509: {exc}") from exc
        if cert.public_key().public_numbers() != self.private_key.public_key().public_numbers():
            raise IdentityError("private key does not match the certificate's public key")

    @classmethod
    def from_pem(cls, msp_id: str, cert_pem: bytes | str, key_pem: bytes | str) -> "Identity":
        """An identity from PEM strings (e.g. a Fabric CA enrollment)."""
        cert = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
        key_b = key_pem.encode() if isinstance(key_pem, str) else key_pem
        try:
            key = serialization.load_pem_private_key(key_b, password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"private key is not an unencrypted PEM key: {exc}") from exc
        return cls(msp_id=msp_id, cert_pem=cert, private_key=key)  # type: ignore[arg-type]

    @classmethod
    def from_msp_dir(cls, msp_id: str, msp_dir: str | Path) -> "Identity":
        """Load ``signcerts/*.pem`` and the matching key from ``keystore/`` of a local MSP dir."""
        root = Path(msp_dir)
        if not root.is_dir():
            raise IdentityError(f"MSP directory {root} does not exist")
        certs = sorted((root / "signcerts").glob("*.pem")) if (root / "signcerts").is_dir() else []
        if not certs:
            raise IdentityError(f"no certificate in {root / 'signcerts'} (expected signcerts/*.pem)")
        if len(certs) > 1:
            raise IdentityError(f"more than one certificate in {root / 'signcerts'}: "
                                f"{', '.join(p.name for p in certs)}")
        cert_pem = certs[0].read_bytes()
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise IdentityError(f"{certs[0]} is not a PEM X.509 certificate: {exc}") from exc
        keys = sorted(p for p in (root / "keystore").glob("*") if p.is_file()) \
            if (root / "keystore").is_dir() else []
        if not keys:
            raise IdentityError(f"no private key in {root / 'keystore'}")
        want = cert.public_key().public_numbers()
        unreadable: list[str] = []
        for path in keys:
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError):
                unreadable.append(path.name)
                continue
            if isinstance(key, ec.EllipticCurvePrivateKey) and key.public_key().public_numbers() == want:
                log.debug("loaded identity %s from %s", msp_id, root)
                return cls(msp_id=msp_id, cert_pem=cert_pem, private_key=key)
        detail = f" (unreadable: {', '.join(unreadable)})" if unreadable else ""
        raise IdentityError(f"no key in {root / 'keystore'} matches {certs[0].name}{detail}")

    def serialized(self) -> bytes:
        """``msp.SerializedIdentity{mspid, id_bytes=PEM}`` bytes: the creator of transactions."""
        return identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.cert_pem).SerializeToString()

    def sign(self, digest_input: bytes) -> bytes:
        """DER ECDSA signature over SHA-256(``digest_input``), low-S normalised."""
        der = self.private_key.sign(digest_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        r, s = to_low_s(r, s, CURVE_ORDERS[self.private_key.curve.name])
        return encode_dss_signature(r, s)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True if ``signature`` is a valid signature of ``data`` by this identity."""
        from cryptography.exceptions import InvalidSignature
        try:
            self.private_key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            return False
