"""Key files written by the network code are 0600 in 0700 directories whatever the umask, and the
scanner the live test relies on finds keys in PEM files, keystores and chaincode packages."""
from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from fedfabric.network import ccmaterial
from fedfabric.network.private import private_dir, private_tree, write_private

from .keyscan import exposures, key_files


@pytest.fixture(autouse=True)
def loose_umask():
    """The usual 022: anything not set explicitly would come out group/world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_ccaas_tls_and_package_are_owner_only(tmp_path: Path) -> None:
    root = private_dir(tmp_path / "run")
    org_dir = root / "chaincode" / "cc" / "org1"
    tls = ccmaterial.ensure_tls(org_dir / "tls", "org1.example.com")
    pkg = ccmaterial.write_package(org_dir / "cc.tar.gz", "cc_1", "127.0.0.1:9999", tls)
    for key in (tls.server_key, tls.client_key, pkg):
        assert _mode(key) == 0o600, key
    for d in (tls.dir, org_dir, org_dir.parent, org_dir.parent.parent):
        assert _mode(d) == 0o700, d
    assert _mode(tls.server_cert) == 0o644  # certificates need no secrecy
    found = key_files(root)
    assert found == sorted([tls.server_key, tls.client_key, pkg])  # the key inside the package is found
    assert exposures(root, found) == []
    ccmaterial.write_package(pkg, "cc_1", "127.0.0.1:9999", tls)  # rewritten: still 0600
    assert _mode(pkg) == 0o600


def test_scanner_reports_loose_files_and_directories(tmp_path: Path) -> None:
    root = private_dir(tmp_path / "run")
    (root / "a" / "keystore").mkdir(parents=True)
    (root / "a" / "keystore" / "IssuerSecretKey").write_bytes(b"\x01\x02")  # not PEM, but a keystore file
    (root / "b").mkdir()
    (root / "b" / "connection.json").write_text('{"client_key": "-----BEGIN PRIVATE KEY-----\\n..."}')
    (root / "b" / "cert.pem").write_text("-----BEGIN CERTIFICATE-----")
    with tarfile.open(root / "b" / "pkg.tar.gz", "w:gz") as tar:
        tar.add(root / "b" / "connection.json", "connection.json")
    found = key_files(root)
    assert [p.relative_to(root).as_posix() for p in found] == [
        "a/keystore/IssuerSecretKey", "b/connection.json", "b/pkg.tar.gz"]
    problems = exposures(root, found)
    assert f"{root / 'b' / 'connection.json'} 0644" in problems and f"{root / 'a'} 0755" in problems
    private_tree(root)
    for f in found:
        f.chmod(0o600)
    assert exposures(root, found) == []
    root.chmod(0o750)
    assert exposures(root, found) == [f"{root} 0750"]


def test_write_private_creates_missing_parents_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "x" / "y" / "key.pem"
    write_private(target, b"-----BEGIN PRIVATE KEY-----")
    assert _mode(target) == 0o600 and _mode(target.parent) == 0o700 and _mode(target.parent.parent) == 0o700
    assert not target.with_name("key.pem.tmp").exists()
