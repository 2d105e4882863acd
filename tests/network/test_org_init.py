"""Per-org key custody: each org initializes its own home on its own site, shares a public definition,
and the orderer org builds the genesis block from the collected definitions only (real cryptogen and
configtxgen, no process started)."""

from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from fedfabric.network import channel, definition, fabricbin, paths
from fedfabric.network.config import ConfigError
from fedfabric.network.definition import DefinitionError, parse_definition
from fedfabric.network.fabricbin import FabricBinaryError
from fedfabric.network.manager import SiteManager

from ..conftest import default_raw, shift_ports, test_config
from ..ports import OFFSETS, org4_entry
from .keyscan import exposures, key_files

OFFSET = OFFSETS["local"]
CONFIG = test_config(OFFSET)
ORG4 = org4_entry(OFFSET, host="127.0.0.1")


def site(root: Path, orgs: list[str], orderer: bool = False, config=CONFIG) -> SiteManager:
    return SiteManager(config, root, fabric=fabricbin.locate(), orgs=orgs, orderer=orderer)


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, SiteManager]:
    """Four sites, each initialized on its own: orderer, org1, org2, org3."""
    base = tmp_path_factory.mktemp("sites")
    out = {"orderer": site(base / "orderer", [], orderer=True)}
    out["orderer"].init_orgs()
    for name in ("org1", "org2", "org3"):
        out[name] = site(base / name, [name])
        out[name].init_orgs()
    return out


def _under(path: Path, root: Path) -> bool:
    return path.is_relative_to(root)


def test_init_writes_one_orgs_keys_into_its_home_only(sites) -> None:
    for name in ("orderer", "org1", "org2", "org3"):
        net = sites[name]
        home = net.layout.home(name)
        found = key_files(net.layout.root)
        assert found, name
        assert [p for p in found if not _under(p, home)] == [], f"{name}: a key outside its home"
        assert exposures(net.layout.root, found) == []
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        others = {n for n in ("orderer", "org1", "org2", "org3") if n != name}
        assert not [p for p in (net.layout.root / "orgs").iterdir() if p.name in others]


def test_init_is_idempotent(sites) -> None:
    net = sites["org1"]
    before = net.layout.own_definition("org1").read_bytes()
    key = net.layout.org_ca_key(net.config.org("org1")).read_bytes()
    net.init_orgs()
    assert net.layout.own_definition("org1").read_bytes() == before
    assert net.layout.org_ca_key(net.config.org("org1")).read_bytes() == key


def test_peer_org_definition_is_public_and_complete(sites) -> None:
    net = sites["org2"]
    org = net.config.org("org2")
    raw = net.layout.own_definition("org2").read_text()
    assert "PRIVATE KEY" not in raw
    doc = parse_definition(raw, CONFIG).doc
    assert (doc["kind"], doc["name"], doc["msp_id"], doc["domain"]) == ("peer-org", "org2", "Org2MSP",
                                                                        "org2.fedfabric.local")
    ca = x509.load_pem_x509_certificate(net.layout.org_ca_cert(org).read_bytes())
    [root] = [x509.load_pem_x509_certificate(p.encode()) for p in doc["msp"]["cacerts"].values()]
    [tlsroot] = [x509.load_pem_x509_certificate(p.encode()) for p in doc["msp"]["tlscacerts"].values()]
    assert root == ca and tlsroot != root and "tlsca.org2.fedfabric.local" in tlsroot.subject.rfc4514_string()
    [admin] = [x509.load_pem_x509_certificate(p.encode()) for p in doc["admins"]]
    admin.verify_directly_issued_by(root)
    assert doc["anchor_peers"] == [{"host": "127.0.0.1", "port": org.peer.port}]
    assert doc["endpoints"] == {"peer": f"127.0.0.1:{org.peer.port}",
                                "chaincode_server": f"127.0.0.1:{org.chaincode_server_port}",
                                "training_node": f"127.0.0.1:{org.node_port}",
                                "ca": f"https://127.0.0.1:{org.ca.port}"}
    assert definition.Definition(doc).peer_org(CONFIG) == replace(org, stake=0)


def test_training_node_tls_is_issued_by_the_orgs_tls_ca(sites) -> None:
    net = sites["org3"]
    org = net.config.org("org3")
    d = net.layout.node_tls_dir(org)
    cert = x509.load_pem_x509_certificate((d / "server.crt").read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(net.layout.org_tls_ca(org).read_bytes()))
    assert stat.S_IMODE((d / "server.key").stat().st_mode) == 0o600


def test_orderer_definition_lists_each_orderer_with_its_tls_cert(sites) -> None:
    doc = json.loads(sites["orderer"].layout.own_definition("orderer").read_text())
    assert doc["kind"] == "orderer-org"
    assert [(o["name"], o["endpoint"]) for o in doc["orderers"]] == [
        (o.name, f"127.0.0.1:{o.port}") for o in CONFIG.orderer_org.orderers]


def _tampered(doc: dict, how: str) -> str:
    d = json.loads(json.dumps(doc))
    if how == "key":
        d["admins"].append("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    elif how == "domain":
        d["domain"] = "org2.other.consortium"
    elif how == "admin":
        d["admins"] = list(d["msp"]["tlscacerts"].values())
    elif how == "root":
        d["msp"]["cacerts"] = {"x.pem": d["admins"][0]}
    elif how == "anchor":
        d["anchor_peers"] = [{"host": "10.9.9.9", "port": 1}]
    elif how == "format":
        d["format"] = "something/0"
    elif how == "filename":
        d["msp"]["cacerts"] = {"../../evil.pem": next(iter(d["msp"]["cacerts"].values()))}
    return json.dumps(d)


@pytest.mark.parametrize("how,message", [
    ("key", "holds a private key"),
    ("domain", "is not org2.fedfabric.local"),
    ("admin", "admins[0] is not an admin (node OU 'admin') issued by the org's CA"),
    ("root", "is not a self-signed CA certificate"),
    ("anchor", "anchor_peers must be its peer"),
    ("format", "not an org definition"),
    ("filename", "bad file name '../../evil.pem'"),
])
def test_a_definition_that_does_not_check_out_is_refused(sites, how, message) -> None:
    doc = json.loads(sites["org2"].layout.own_definition("org2").read_text())
    with pytest.raises(DefinitionError, match=re.escape(message)):
        parse_definition(_tampered(doc, how), CONFIG)


def test_an_orderer_tls_cert_of_another_ca_is_refused(sites) -> None:
    doc = json.loads(sites["orderer"].layout.own_definition("orderer").read_text())
    org1 = json.loads(sites["org1"].layout.own_definition("org1").read_text())
    doc["orderers"][1]["tls_cert"] = next(iter(org1["msp"]["tlscacerts"].values()))
    with pytest.raises(DefinitionError, match="orderer2: tls_cert is not issued by the orderer org's TLS CA"):
        parse_definition(json.dumps(doc), CONFIG)


def test_genesis_needs_every_definition(sites) -> None:
    net = sites["orderer"]
    with pytest.raises(FabricBinaryError, match="no definition of org1, org2, org3 in .*network.sh org import"):
        net.generate()
    assert not net.layout.genesis_block.exists()


def test_genesis_block_is_built_from_the_collected_definitions_only(sites, tmp_path) -> None:
    net = sites["orderer"]
    for name in ("org1", "org2", "org3"):
        d = definition.load_definition(sites[name].layout.own_definition(name), CONFIG)
        definition.import_definition(net.layout, d)
    net.generate()
    fabric = net.fabric
    channel.translate(fabric, "proto_decode", "common.Block", net.layout.genesis_block, tmp_path / "b.json")
    cfg = json.loads((tmp_path / "b.json").read_text())["data"]["data"][0]["payload"]["data"]["config"]
    app_orgs = cfg["channel_group"]["groups"]["Application"]["groups"]
    assert set(app_orgs) == {"Org1MSP", "Org2MSP", "Org3MSP"}
    for name, msp_id in (("org1", "Org1MSP"), ("org2", "Org2MSP"), ("org3", "Org3MSP")):
        doc = json.loads(sites[name].layout.own_definition(name).read_text())
        value = app_orgs[msp_id]["values"]["MSP"]["value"]["config"]
        assert [base64.b64decode(c).decode() for c in value["root_certs"]] == list(doc["msp"]["cacerts"].values())
        assert [base64.b64decode(c).decode() for c in value["tls_root_certs"]] == list(
            doc["msp"]["tlscacerts"].values())
        assert value["fabric_node_ous"]["enable"] is True
        anchors = app_orgs[msp_id]["values"]["AnchorPeers"]["value"]["anchor_peers"]
        assert anchors == [{"host": "127.0.0.1", "port": CONFIG.org(name).peer.port}]
    # the orderer org's site holds no key of any peer org
    assert [p for p in key_files(net.layout.root) if not _under(p, net.layout.home("orderer"))] == []


def test_an_org_outside_the_consortium_file_joins_the_site_config(tmp_path) -> None:
    entry = tmp_path / "org4.yaml"
    entry.write_text(yaml.safe_dump(ORG4))
    root = tmp_path / "org4-site"
    out = _cli("org", "init", "--new", str(entry), root=root)
    assert "org4: home" in out.stderr and out.returncode == 0, out.stderr
    net = SiteManager(CONFIG, root, fabric=fabricbin.locate())
    assert net.site == {"orgs": ["org4"], "orderer": False}
    assert [o.name for o in net.config.orgs] == ["org1", "org2", "org3", "org4"]
    assert net.config.org("org4").stake == 0 and [o.name for o in net.local_orgs] == ["org4"]
    clash = dict(ORG4, name="org5", msp_id="Org5MSP")
    (tmp_path / "org5.yaml").write_text(yaml.safe_dump(clash))
    out = _cli("org", "init", "--new", str(tmp_path / "org5.yaml"), root=root)
    assert out.returncode == 2 and "already used by peer0.org4.listen" in out.stderr


def _cli(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    cfg = root.parent / "consortium.yaml"
    cfg.write_text(yaml.safe_dump(shift_ports(default_raw(), OFFSET)))
    return subprocess.run([sys.executable, "-m", "fedfabric", "network", "--config", str(cfg), "--run-dir", str(root),
                           *args], capture_output=True, text=True, cwd=paths.REPO_ROOT,
                          env={"PYTHONPATH": f"{paths.REPO_ROOT / 'app'}:{paths.REPO_ROOT / 'chaincode'}",
                               "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


def test_cli_init_definition_import(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert _cli("org", "init", "--org", "org1", root=a).returncode == 0
    assert _cli("org", "init", "--org", "org2", root=b).returncode == 0
    shared = tmp_path / "org1.json"
    out = _cli("org", "definition", "--org", "org1", "--out", str(shared), root=a)
    assert out.returncode == 0 and "send it to the other orgs" in out.stderr
    out = _cli("org", "import", str(shared), root=b)
    assert out.returncode == 0 and "imported org1 (Org1MSP, peer-org)" in out.stderr
    assert (b / "public" / "org1" / "msp" / "config.yaml").exists()
    assert not (b / "orgs" / "org1").exists()
    out = _cli("org", "import", str(b / "orgs" / "org2" / "definition.json"), root=b)
    assert out.returncode == 2 and "is an org of this site" in out.stderr
    (tmp_path / "bad.json").write_text(shared.read_text().replace("org1.fedfabric.local", "org1.evil"))
    out = _cli("org", "import", str(tmp_path / "bad.json"), root=b)
    assert out.returncode == 2 and "bad.json" in out.stderr
    for line in ("Initialize one org's home", "Print or write an org's public definition", "org1-host$"):
        assert line in _cli("org", "--help", root=a).stdout


def test_unknown_org_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no org named 'org9'"):
        site(tmp_path, ["org9"])
