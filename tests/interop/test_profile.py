"""``network.sh profile``: the connection profile's layout, the identity it points at, what it refuses.

Runs on crypto material generated in a temporary run directory (cryptogen, no node started).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from fedfabric.cli import app
from fedfabric.network import paths
from fedfabric.network.manager import SiteManager
from fedfabric.network.profile import ProfileError, write_profile

from ..conftest import TEST_PORT_OFFSET, default_raw, shift_ports
from .conftest import private_key_files


@pytest.fixture(scope="module")
def net(generated_net: SiteManager) -> SiteManager:
    return generated_net


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile-config") / "consortium.yaml"
    path.write_text(yaml.safe_dump(shift_ports(default_raw(), TEST_PORT_OFFSET)))
    return path


@pytest.fixture(scope="module")
def written(net: SiteManager, tmp_path_factory: pytest.TempPathFactory):
    files = write_profile(net.layout, "org1", "User1", tmp_path_factory.mktemp("out") / "org1")
    return files, json.loads(files.json.read_text())


def _sans(cert_file: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def _tls(entry: dict, expected: Path) -> None:
    """Inline PEM and file path, both the expected TLS CA certificate."""
    pem = entry["pem"][0] if isinstance(entry["pem"], list) else entry["pem"]
    assert pem == expected.read_text()
    assert Path(entry["path"]).read_text() == pem
    x509.load_pem_x509_certificate(pem.encode())


def test_common_connection_profile_layout(net: SiteManager, written) -> None:
    files, p = written
    cfg, layout = net.config, net.layout
    org1 = cfg.org("org1")
    assert p["name"] == "fedfabric-org1" and p["version"] == "1.0.0"
    assert p["client"]["organization"] == "org1"
    assert set(p["organizations"]) == {o.name for o in cfg.orgs}
    for o in cfg.orgs:
        entry = p["organizations"][o.name]
        assert entry["mspid"] == o.msp_id and entry["peers"] == [o.peer.host_name]
        assert entry.get("certificateAuthorities") == ([o.ca.host_name] if o == org1 else None)
        peer = p["peers"][o.peer.host_name]
        assert peer["url"] == f"grpcs://127.0.0.1:{o.peer.port}"
        _tls(peer["tlsCACerts"], layout.org_tls_ca(o))
        # the TLS name the SDKs will check is one the peer's certificate carries
        assert peer["grpcOptions"]["ssl-target-name-override"] in _sans(layout.peer_dir(o) / "tls" / "server.crt")
        assert peer["grpcOptions"]["hostnameOverride"] == peer["grpcOptions"]["grpc.ssl_target_name_override"] \
            == o.peer.host_name
    assert set(p["peers"]) == {o.peer.host_name for o in cfg.orgs}
    assert set(p["orderers"]) == {o.host_name for o in cfg.orderer_org.orderers}
    for o in cfg.orderer_org.orderers:
        entry = p["orderers"][o.host_name]
        assert entry["url"] == f"grpcs://127.0.0.1:{o.port}"
        _tls(entry["tlsCACerts"], layout.orderer_tls_ca)
        assert entry["grpcOptions"]["ssl-target-name-override"] in _sans(layout.orderer_dir(o) / "tls" / "server.crt")
    assert list(p["certificateAuthorities"]) == [org1.ca.host_name]
    ca = p["certificateAuthorities"][org1.ca.host_name]
    ca_spec = next(s for s in net.ca_specs() if s.node_id == org1.ca_node_id)
    assert ca["url"] == f"https://127.0.0.1:{org1.ca.port}"
    assert ca["caName"] == ca_spec.env["FABRIC_CA_SERVER_CA_NAME"]
    assert isinstance(ca["tlsCACerts"]["pem"], list)
    _tls(ca["tlsCACerts"], layout.org_tls_ca(org1))
    assert ca["httpOptions"] == {"verify": True}
    channel = p["channels"][cfg.channel]
    assert channel["orderers"] == list(p["orderers"]) and set(channel["peers"]) == set(p["peers"])
    assert all(all(roles.values()) and len(roles) == 4 for roles in channel["peers"].values())
    # YAML and JSON carry the same document; neither names the run directory
    assert yaml.safe_load(files.yaml.read_text()) == p
    assert str(layout.root) not in files.json.read_text() and str(layout.root) not in files.yaml.read_text()


def test_identity_points_at_the_key_without_copying_it(net: SiteManager, written) -> None:
    files, _ = written
    org1 = net.config.org("org1")
    ident = json.loads(files.identity.read_text())
    msp = net.layout.user_msp(org1, "User1")
    key_file = msp / "keystore" / "priv_sk"
    assert ident["mspId"] == "Org1MSP" and ident["name"] == "User1" and ident["organization"] == "org1"
    assert ident["enrollmentId"] == "User1@org1.fedfabric.local"
    assert ident["privateKey"] == {"path": str(key_file)} and files.private_key == key_file
    cert_pem = next((msp / "signcerts").glob("*.pem")).read_text()
    assert ident["certificate"]["pem"] == cert_pem == Path(ident["certificate"]["path"]).read_text()
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()   # the identity's own key
    ca_cert = x509.load_pem_x509_certificate(Path(ident["caCertificate"]["path"]).read_bytes())
    assert cert.issuer == ca_cert.subject
    # the key is nowhere under the output directory; the MSP's keystore holds only a link to it
    out = files.json.parent
    assert private_key_files(out) == []
    entries = list((files.msp_dir / "keystore").iterdir())
    assert len(entries) == 1 and entries[0].is_symlink() and entries[0].resolve() == key_file.resolve()
    assert stat.S_IMODE((files.msp_dir / "keystore").stat().st_mode) == 0o700
    assert (files.msp_dir / "config.yaml").read_text() == (msp / "config.yaml").read_text()
    assert sorted(p.name for p in files.msp_dir.iterdir()) == ["cacerts", "config.yaml", "keystore", "signcerts",
                                                               "tlscacerts"]


def test_rewriting_replaces_the_msp(net: SiteManager, written) -> None:
    files, _ = written
    again = write_profile(net.layout, "org1", "Admin", files.json.parent)
    assert again.msp_dir == files.msp_dir and again.identity.name == "identity-Admin.json"
    cert = x509.load_pem_x509_certificate((again.msp_dir / "signcerts" / "cert.pem").read_bytes())
    assert "Admin@org1" in cert.subject.rfc4514_string()
    assert [p.name for p in (again.msp_dir / "keystore").iterdir()] == ["priv_sk"]
    write_profile(net.layout, "org1", "User1", files.json.parent)     # back, for the other tests


def test_refusals(net: SiteManager, tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no org named 'org9'"):
        write_profile(net.layout, "org9", "User1", tmp_path / "a")
    with pytest.raises(ProfileError, match=r"no identity 'carol' in org2 .*network.sh enroll --org org2 --name carol"):
        write_profile(net.layout, "org2", "carol", tmp_path / "b")
    key = net.layout.user_msp(net.config.org("org3"), "User1") / "keystore" / "priv_sk"
    key.chmod(0o644)
    try:
        with pytest.raises(ProfileError, match=r"mode 0644: group or others can reach it; run `chmod 600"):
            write_profile(net.layout, "org3", "User1", tmp_path / "c")
    finally:
        key.chmod(0o600)
    assert not (tmp_path / "c").exists()
    missing = SiteManager(net.config, tmp_path / "empty-run", fabric=net.fabric)
    with pytest.raises(ProfileError, match="no identity 'User1' in org1"):
        write_profile(missing.layout, "org1", "User1", tmp_path / "d")


def test_network_sh_and_fedfabric_network_profile(net: SiteManager, config_file: Path, tmp_path: Path) -> None:
    base = ["--config", str(config_file), "--run-dir", str(net.layout.root), "profile"]

    def network_sh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(paths.NETWORK_DIR / "network.sh"), *base, *args], capture_output=True, text=True,
                              timeout=120)

    out = network_sh("--org", "Org2MSP", "--user", "Admin", "--out", str(tmp_path / "a"))
    assert out.returncode == 0, out.stderr
    p = json.loads((tmp_path / "a" / "connection-org2.json").read_text())
    assert p["client"]["organization"] == "org2" and (tmp_path / "a" / "identity-Admin.json").exists()
    admin_msp = net.layout.user_msp(net.config.org("org2"), "Admin")
    assert f"private key (not copied): {admin_msp}" in out.stderr.replace("\n", "")
    out = network_sh("--org", "org7", "--out", str(tmp_path / "b"))
    assert out.returncode == 2 and "error: no org named 'org7'" in out.stderr
    # `fedfabric network …` is the same command line
    res = CliRunner().invoke(app, ["network"] + base + ["--org", "org3", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    org3 = json.loads((tmp_path / "c" / "connection-org3.json").read_text())
    assert org3["organizations"]["org3"]["mspid"] == "Org3MSP"
    assert os.listdir(tmp_path / "c" / "msp" / "keystore") == ["priv_sk"]
