"""Compose files stay generated from the consortium file and the org homes: one per org, for its own host
(its native nodes' specs, its own address, TLS on, only its own node's directories mounted), and the
committed single-machine aggregate ``docker-compose-fabric.yml``. No Docker engine here: the files are
parsed and checked against the native node specs and against real org homes (cryptogen, no process
started)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fedfabric.cli import app
from fedfabric.network import compose, fabricbin, paths
from fedfabric.network.compose import CONTAINER_RUN, IMAGE_BUILDER
from fedfabric.network.config import ConsortiumConfig, load_config, parse_config
from fedfabric.network.layout import Layout
from fedfabric.network.manager import SiteManager

from ..conftest import default_raw
from .keyscan import key_files

HOSTS = {"orderer": "10.231.12.10", "org1": "10.231.12.11", "org2": "10.231.12.12", "org3": "10.231.12.13"}
PATH_VALUE = re.compile(rf"{re.escape(CONTAINER_RUN)}[^\s\],]*")


def _default() -> tuple[ConsortiumConfig, Layout]:
    config = load_config(paths.DEFAULT_CONFIG)
    return config, Layout(paths.REPO_ROOT / "run", config)


def _hosts_raw() -> dict:
    """The consortium file with the orderer org and each peer org on a host of its own."""
    raw = default_raw()
    raw["orderer_org"]["host"] = HOSTS["orderer"]
    for o in raw["orgs"]:
        o["host"] = HOSTS[o["name"]]
    return raw


@pytest.fixture(scope="module")
def hosts_site(tmp_path_factory: pytest.TempPathFactory) -> SiteManager:
    """One run directory holding every org's home (real cryptogen material), orgs on distinct hosts."""
    base = tmp_path_factory.mktemp("compose-hosts")
    cfg = base / "consortium.yaml"
    cfg.write_text(yaml.safe_dump(_hosts_raw()))
    net = SiteManager(load_config(cfg), base / "run", fabric=fabricbin.locate())
    net.init_orgs()
    return net


def _doc(config: ConsortiumConfig, layout: Layout, name: str, out: Path) -> dict:
    return yaml.safe_load(compose.render_org(config, layout, name, out))


def _sources(svc: dict, base_dir: Path) -> list[tuple[Path, dict]]:
    """Each bind mount's host directory (resolved as compose does: against the file's directory)."""
    return [(Path(os.path.normpath(base_dir / v["source"])), v) for v in svc["volumes"]]


# -- the committed aggregate ------------------------------------------------------------------

def test_committed_compose_file_is_current() -> None:
    config, layout = _default()
    committed = compose.AGGREGATE.read_text()
    assert committed == compose.render_consortium(config, layout), \
        "run `network/network.sh compose` and commit docker-compose-fabric.yml"


def test_aggregate_is_every_orgs_file_together() -> None:
    config, layout = _default()
    agg = yaml.safe_load(compose.render_consortium(config, layout))
    together: dict = {}
    for name in compose.org_names(config):
        own = _doc(config, layout, name, paths.REPO_ROOT / f"{name}.yml")   # same directory: same sources
        assert not set(own["services"]) & set(together)
        together.update(own["services"])
    assert agg["services"] == together
    assert set(agg["services"]) == {"orderer1", "orderer2", "orderer3", "peer0.org1", "peer0.org2", "peer0.org3",
                                    "ca.org1", "ca.org2", "ca.org3"}
    assert {v["source"] for s in agg["services"].values() for v in s["volumes"]} >= {"./run/config"}


# -- each org's file mirrors its native nodes --------------------------------------------------

@pytest.mark.parametrize("name", ["orderer", "org1", "org2", "org3"])
def test_each_orgs_services_mirror_its_native_nodes(hosts_site, tmp_path, name) -> None:
    net = hosts_site
    config, layout, root = net.config, net.layout, str(net.layout.root)
    native = {s.node_id: s for s in (net.orderer_specs() if name == "orderer" else
                                     [s for s in net.peer_specs() + net.ca_specs() if s.node_id.endswith(f".{name}")])}
    doc = _doc(config, layout, name, tmp_path / f"{name}.yml")
    assert doc["name"] == f"fedfabric-{name}"
    assert set(doc["services"]) == set(native) and native
    for node_id, svc in doc["services"].items():
        spec = native[node_id]
        image = {"orderer": "hyperledger/fabric-orderer:", "peer": "hyperledger/fabric-peer:",
                 "ca": "hyperledger/fabric-ca:"}[spec.kind]
        assert svc["image"].startswith(image) and svc["container_name"] == f"fedfabric-{node_id}"
        assert svc["network_mode"] == "host" and "ports" not in svc
        assert svc["user"].startswith("${FEDFABRIC_UID:?") and ":${FEDFABRIC_GID:?" in svc["user"]
        want = {k: v.replace(root, CONTAINER_RUN) for k, v in spec.env.items()}
        if spec.kind == "peer":
            want["CORE_CHAINCODE_EXTERNALBUILDERS"] = (f"[{{name: ccaas_builder, path: {IMAGE_BUILDER}, "
                                                       "propagateEnvironment: [CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG]}]")
        assert svc["environment"] == want, node_id
        for key, value in svc["environment"].items():
            assert root not in value and str(paths.REPO_ROOT) not in value, (node_id, key)


@pytest.mark.parametrize("name", ["orderer", "org1", "org2", "org3"])
def test_every_path_a_node_uses_is_mounted_from_its_own_home(hosts_site, tmp_path, name) -> None:
    """Every path in a service's environment lies under one of its mounts; each mount is the same
    directory of the run dir (host side) as inside the container, of the org's own home (or Fabric's
    config, or the orderer org's own public definition); only the node's data directory is writable."""
    net = hosts_site
    layout = net.layout
    out = tmp_path / "compose" / f"{name}.yml"
    doc = _doc(net.config, layout, name, out)
    home = layout.home(name)
    for node_id, svc in doc["services"].items():
        mounted = _sources(svc, out.parent)
        targets = []
        for host, vol in mounted:
            assert vol["type"] == "bind" and vol["bind"] == {"create_host_path": False}
            assert vol["target"] == f"{CONTAINER_RUN}/{host.relative_to(layout.root).as_posix()}"
            allowed = [home, layout.fabric_cfg] + ([layout.public_org_dir(name)] if name == "orderer" else [])
            assert any(host.is_relative_to(a) for a in allowed), (node_id, host)
            assert vol["read_only"] == (not host.is_relative_to(home / "nodes")), (node_id, host)
            if not vol["read_only"]:
                assert host == layout.node_dir(name, node_id)
            targets.append(vol["target"])
        used = [p for v in svc["environment"].values() for p in PATH_VALUE.findall(v)]
        assert used, node_id
        for p in used:
            assert any(p == t or p.startswith(t + "/") for t in targets), (node_id, p)


def test_tls_on_every_listener(hosts_site, tmp_path) -> None:
    for name in compose.org_names(hosts_site.config):
        for node_id, svc in _doc(hosts_site.config, hosts_site.layout, name, tmp_path / "x.yml")["services"].items():
            env = svc["environment"]
            flags = {k: v for k, v in env.items() if k.endswith("TLS_ENABLED")}
            want = {"orderer": {"ORDERER_GENERAL_TLS_ENABLED", "ORDERER_ADMIN_TLS_ENABLED",
                                "ORDERER_OPERATIONS_TLS_ENABLED"},
                    "peer": {"CORE_PEER_TLS_ENABLED", "CORE_OPERATIONS_TLS_ENABLED"},
                    "ca": {"FABRIC_CA_SERVER_TLS_ENABLED", "FABRIC_CA_SERVER_OPERATIONS_TLS_ENABLED"}}
            kind = "orderer" if node_id.startswith("orderer") else node_id.split(".")[0].rstrip("0123456789")
            assert set(flags) == want["peer" if kind == "peer" else kind] and set(flags.values()) == {"true"}, node_id
            if kind == "orderer":
                assert env["ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED"] == "true"


# -- addresses: the config's hosts ------------------------------------------------------------

def test_orgs_on_distinct_hosts_listen_on_their_own_addresses(hosts_site, tmp_path) -> None:
    config, layout = hosts_site.config, hosts_site.layout
    oo = config.orderer_org
    orderers = _doc(config, layout, "orderer", tmp_path / "orderer.yml")
    assert orderers["x-fedfabric"]["host"] == HOSTS["orderer"]
    for o in oo.orderers:
        env = orderers["services"][o.name]["environment"]
        assert env["ORDERER_GENERAL_LISTENADDRESS"] == HOSTS["orderer"]
        assert env["ORDERER_GENERAL_LISTENPORT"] == str(o.port)
        assert env["ORDERER_ADMIN_LISTENADDRESS"] == f"{HOSTS['orderer']}:{o.admin_port}"
        assert env["ORDERER_OPERATIONS_LISTENADDRESS"] == f"{HOSTS['orderer']}:{o.operations_port}"
    for org in config.orgs:
        host = HOSTS[org.name]
        doc = _doc(config, layout, org.name, tmp_path / f"{org.name}.yml")
        peer, ca = doc["services"][org.peer_node_id]["environment"], doc["services"][org.ca_node_id]["environment"]
        for key in ("CORE_PEER_ADDRESS", "CORE_PEER_LISTENADDRESS", "CORE_PEER_GOSSIP_EXTERNALENDPOINT",
                    "CORE_PEER_GOSSIP_ENDPOINT", "CORE_PEER_GOSSIP_BOOTSTRAP"):
            assert peer[key] == f"{host}:{org.peer.port}", key
        assert peer["CORE_PEER_CHAINCODELISTENADDRESS"] == f"{host}:{org.peer.chaincode_port}"
        assert peer["CORE_OPERATIONS_LISTENADDRESS"] == f"{host}:{org.peer.operations_port}"
        assert (ca["FABRIC_CA_SERVER_ADDRESS"], ca["FABRIC_CA_SERVER_PORT"]) == (host, str(org.ca.port))
        assert ca["FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS"] == f"{host}:{org.ca.operations_port}"
        assert doc["x-fedfabric"] == {
            "org": org.name, "msp_id": org.msp_id, "host": host,
            "native": {f"cc-{config.chaincode.name}.{org.name}": f"{host}:{org.chaincode_server_port}",
                       f"node.{org.name}": f"{host}:{org.node_port}"}}
        text = compose.render_org(config, layout, org.name, tmp_path / f"{org.name}.yml")
        assert "127.0.0.1" not in text and f"own host, {host}" in text


def test_the_default_consortium_stays_on_loopback() -> None:
    config, layout = _default()
    for name, svc in yaml.safe_load(compose.render_consortium(config, layout))["services"].items():
        for key, value in svc["environment"].items():
            if key.endswith(("LISTENADDRESS", "_ADDRESS", "ENDPOINT", "BOOTSTRAP")) and value:
                assert value == "127.0.0.1" or value.startswith("127.0.0.1:"), (name, key, value)


# -- key custody -------------------------------------------------------------------------------

def test_no_compose_file_reaches_another_orgs_private_keys(hosts_site, tmp_path) -> None:
    """With every org's real home on disk: the keys a service can read through its mounts are its own
    node's only (a peer: its MSP key and TLS key, not the org's CA or admin keys), and no file names a
    path of another org's home."""
    net = hosts_site
    layout = net.layout
    keys = key_files(layout.root)
    assert {p.relative_to(layout.root).parts[1] for p in keys} == set(compose.org_names(net.config))
    for name in compose.org_names(net.config):
        out = tmp_path / f"{name}.yml"
        text = compose.render_org(net.config, layout, name, out)
        for other in compose.org_names(net.config):
            if other != name:
                assert f"/orgs/{other}/" not in text and f"/public/{other}" not in text, (name, other)
        for node_id, svc in yaml.safe_load(text)["services"].items():
            reach = {p for p in keys if any(p.is_relative_to(h) for h, _ in _sources(svc, out.parent))}
            assert all(p.is_relative_to(layout.home(name)) for p in reach), (node_id, reach)
            if name == "orderer":
                o = next(o for o in net.config.orderer_org.orderers if o.name == node_id)
                assert reach and all(p.is_relative_to(layout.orderer_dir(o)) for p in reach), node_id
                continue
            org = net.config.org(name)
            if node_id == org.peer_node_id:
                assert reach and all(p.is_relative_to(layout.peer_dir(org)) for p in reach), node_id
            else:
                assert layout.org_ca_key(org) in reach
                assert not [p for p in reach if p.is_relative_to(layout.org_dir(org) / "users")
                            or p.is_relative_to(layout.org_dir(org) / "peers")], node_id


# -- the usage hint ------------------------------------------------------------------------------

def test_each_file_says_how_to_run_it_on_its_host(hosts_site, tmp_path) -> None:
    config, layout = hosts_site.config, hosts_site.layout
    out = layout.root / "compose" / "org2.yml"
    text = compose.render_org(config, layout, "org2", out)
    header = text.split("\nname:")[0]
    assert all(line.startswith("#") for line in header.splitlines())
    run_dir = str(layout.root)
    for want in (f"own host, {HOSTS['org2']}", "--config ", f"--run-dir {run_dir}", "org init --org org2",
                 "org import orderer.json org1.json org3.json", f"compose --org org2\n",
                 "export FEDFABRIC_UID=$(id -u) FEDFABRIC_GID=$(id -g)", f"docker compose -f {out} up -d",
                 f"{run_dir} up\n", f"chaincode server ({HOSTS['org2']}:", f"docker compose -f {out} down"):
        assert want in header, want
    elsewhere = compose.render_org(config, layout, "orderer", tmp_path / "orderer.yml")
    assert f"compose --orderer --out {tmp_path}\n" in elsewhere and "up --no-deploy" in elsewhere
    assert "org import org1.json org2.json org3.json" in elsewhere


# -- network.sh compose ------------------------------------------------------------------------

def network(*args: str):
    """``network.sh ARGS``, in this process."""
    return CliRunner().invoke(app, ["network", *args])


def test_cli_writes_the_files_of_the_orgs_this_site_holds(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "consortium.yaml"
    cfg.write_text(yaml.safe_dump(_hosts_raw()))
    monkeypatch.setattr(compose, "AGGREGATE", tmp_path / "aggregate.yml")
    run = tmp_path / "org1-host"
    ns = ["--config", str(cfg), "--run-dir", str(run)]
    assert network(*ns, "org", "init", "--org", "org1").exit_code == 0
    res = network(*ns, "compose")
    assert res.exit_code == 0 and "run `network.sh generate`" in res.stderr     # Fabric's config is not there yet
    assert network(*ns, "generate").exit_code == 0
    res = network(*ns, "compose")
    assert res.exit_code == 0 and "not there yet" not in res.stderr
    written = sorted(p.name for p in (run / "compose").iterdir())
    assert written == ["org1.yml"] and not (tmp_path / "aggregate.yml").exists()
    doc = yaml.safe_load((run / "compose" / "org1.yml").read_text())
    assert set(doc["services"]) == {"peer0.org1", "ca.org1"}
    for svc in doc["services"].values():          # every bind source exists: nothing left for Docker to create
        for host, vol in _sources(svc, run / "compose"):
            assert host.is_dir(), host
            if not vol["read_only"]:
                assert stat.S_IMODE(host.stat().st_mode) == 0o700
    res = network(*ns, "compose", "--org", "org2")                 # org2's home is on org2's host
    assert res.exit_code == 2 and "not an org of this site" in res.stderr
    assert network(*ns, "compose", "--output", str(tmp_path / "x.yml")).exit_code == 2
    assert network(*ns, "compose", "--org", "org1", "--out", str(tmp_path / "elsewhere")).exit_code == 0
    assert (tmp_path / "elsewhere" / "org1.yml").read_text().count(f"--out {tmp_path / 'elsewhere'}") == 1


def test_cli_on_a_site_holding_everything_also_writes_the_aggregate(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(compose, "AGGREGATE", tmp_path / "aggregate.yml")
    run = tmp_path / "run"
    assert network("--run-dir", str(run), "compose").exit_code == 0
    assert sorted(p.name for p in (run / "compose").iterdir()) == ["orderer.yml", "org1.yml", "org2.yml", "org3.yml"]
    agg = yaml.safe_load((tmp_path / "aggregate.yml").read_text())
    assert len(agg["services"]) == 9
    assert network("--run-dir", str(run), "compose", "--orderer").exit_code == 0
    assert "orderer1" in yaml.safe_load((run / "compose" / "orderer.yml").read_text())["services"]
