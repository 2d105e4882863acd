"""Identity: MSP-dir loading, clear errors, serialized creator, low-S signatures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.msp import identities_pb2

from fedfabric.ledger import Identity, IdentityError
from fedfabric.ledger.identity import CURVE_ORDERS, to_low_s

from .certs import pem_key, write_msp

N = CURVE_ORDERS["secp256r1"]


def test_loads_msp_dir(msp_dir: Path) -> None:
    ident = Identity.from_msp_dir(msp_id="Org1MSP", msp_dir=msp_dir)
    assert ident.msp_id == "Org1MSP"
    assert ident.cert_pem == (msp_dir / "signcerts" / "cert.pem").read_bytes()
    sid = identities_pb2.SerializedIdentity.FromString(ident.serialized())
    assert sid.mspid == "Org1MSP" and sid.id_bytes == ident.cert_pem
    assert "BEGIN" not in repr(ident) and "private" not in repr(ident)


def test_picks_matching_key_among_several(msp_dir: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    (msp_dir / "keystore" / "aaa_other_sk").write_bytes(pem_key(other))
    ident = Identity.from_msp_dir("Org1MSP", msp_dir)
    assert ident.verify(ident.sign(b"x"), b"x")


@pytest.mark.parametrize("breakage, needle", [
    ("no_dir", "does not exist"),
    ("no_signcerts", "no certificate"),
    ("no_keystore", "no private key"),
    ("corrupt_cert", "not a PEM X.509"),
    ("corrupt_key", "unreadable: priv_sk"),
    ("wrong_key", "no key in"),
])
def test_clear_errors(tmp_path: Path, msp_dir: Path, breakage: str, needle: str) -> None:
    target = msp_dir
    if breakage == "no_dir":
        target = tmp_path / "missing"
    elif breakage == "no_signcerts":
        shutil.rmtree(msp_dir / "signcerts")
    elif breakage == "no_keystore":
        shutil.rmtree(msp_dir / "keystore")
    elif breakage == "corrupt_cert":
        (msp_dir / "signcerts" / "cert.pem").write_text("garbage")
    elif breakage == "corrupt_key":
        (msp_dir / "keystore" / "priv_sk").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    elif breakage == "wrong_key":
        (msp_dir / "keystore" / "priv_sk").write_bytes(pem_key(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(IdentityError, match=needle):
        Identity.from_msp_dir("Org1MSP", target)


def test_from_pem_rejects_mismatched_key(tmp_path: Path) -> None:
    a = write_msp(tmp_path / "a")
    b = write_msp(tmp_path / "b")
    with pytest.raises(IdentityError, match="does not match"):
        Identity.from_pem("Org1MSP", (a / "signcerts" / "cert.pem").read_text(), (b / "keystore" / "priv_sk").read_text())


def test_to_low_s() -> None:
    assert to_low_s(1, N - 5, N) == (1, 5)
    assert to_low_s(1, 5, N) == (1, 5)
    assert to_low_s(1, N // 2, N) == (1, N // 2)
    assert to_low_s(1, N // 2 + 1, N) == (1, N - (N // 2 + 1))


def test_signatures_are_low_s_and_verify(identity: Identity) -> None:
    pub = identity.private_key.public_key()
    for i in range(200):
        msg = f"message {i}".encode()
        sig = identity.sign(msg)
        _, s = decode_dss_signature(sig)
        assert 0 < s <= N // 2
        pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))  # raises if invalid
    assert not identity.verify(identity.sign(b"a"), b"b")


def test_high_s_counterpart_also_verifies_but_is_not_emitted(identity: Identity) -> None:
    """Sanity: both (r, s) and (r, N-s) verify, so normalisation is what makes it canonical."""
    sig = identity.sign(b"m")
    r, s = decode_dss_signature(sig)
    high = encode_dss_signature(r, N - s)
    assert identity.verify(high, b"m")
    assert high != sig
