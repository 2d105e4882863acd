"""Live: the per-org compose files run a consortium -- each service as its container would run it.

No Docker engine here, so each service of each org's file (written by ``network.sh compose`` on that
org's own site) runs its own command from the pinned Fabric build in a mount namespace whose file system
holds nothing but the service's bind mounts (``composerun``), with the service's environment only. Four
sites as on four hosts: each org initializes its own home, the definitions are exchanged, each site
writes its file and its services start; then each site's ``network.sh up`` finds its nodes already
running (as with containers), joins them to the channel and deploys the chaincode, whose servers run
natively, and the consortium is recorded across the sites. Proves that a file's mounts and environment
are all a node needs, read-only where they say so.

Ports of its own (tests/ports.py); every process is stopped and every site taken down at the end, also on failure.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from typer.testing import CliRunner

from fedfabric.cli import app
from fedfabric.client import open_client
from fedfabric.network import definition, fabricbin, nodes
from fedfabric.network.config import load_config
from fedfabric.network.deploy import product_deployment
from fedfabric.network.manager import SiteManager
from fedfabric.node.bootstrap import init_consortium

from ..conftest import default_raw, shift_ports
from ..ports import OFFSETS
from . import composerun
from .keyscan import key_files
from .procs import run_dir_processes

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                 reason="needs root and unshare (mount namespaces)")]
OFFSET = OFFSETS["compose"]
SITES = ("orderer", "org1", "org2", "org3")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("live-compose")
    cfg = base / "consortium.yaml"
    cfg.write_text(yaml.safe_dump(shift_ports(default_raw(), OFFSET)))
    w: dict = {"base": base, "cfg": cfg, "procs": [], "notes": {}}
    config = load_config(cfg)
    w["sites"] = {"orderer": SiteManager(config, base / "orderer", orgs=[], orderer=True)}
    w["sites"].update({o: SiteManager(config, base / o, orgs=[o]) for o in SITES[1:]})
    try:
        yield w
    finally:
        composerun.stop(w["procs"])
        for net in w["sites"].values():
            net.down()


def _cli(w: dict, site: str, *args: str) -> int:
    """``network.sh ARGS`` on ``site``, in this process: its exit status."""
    common = ["--config", str(w["cfg"]), "--run-dir", str(w["sites"][site].layout.root)]
    return CliRunner().invoke(app, ["network", *common, *args]).exit_code


def test_each_site_writes_its_own_file(world) -> None:
    sites = world["sites"]
    assert _cli(world, "orderer", "org", "init", "--orderer") == 0
    for o in SITES[1:]:
        assert _cli(world, o, "org", "init", "--org", o) == 0
    for name, net in sites.items():       # the definitions the orgs send each other
        for other, theirs in sites.items():
            if other != name:
                own = theirs.layout.own_definition(other)
                definition.import_definition(net.layout, definition.load_definition(own, net.config))
        net.refresh()
    for name in SITES:
        assert _cli(world, name, "generate") == 0
        assert _cli(world, name, "compose") == 0
        files = sorted(p.name for p in (sites[name].layout.root / "compose").iterdir())
        assert files == [f"{name}.yml"], name
    assert sites["orderer"].layout.genesis_block.exists()


def test_the_services_run_from_their_mounts_only(world) -> None:
    fabric = fabricbin.locate()
    for name in SITES:
        net = world["sites"][name]
        path = net.layout.root / "compose" / f"{name}.yml"
        doc = yaml.safe_load(path.read_text())
        for node_id, svc in doc["services"].items():
            world["procs"].append(composerun.start(svc, path.parent, world["base"] / "fs" / node_id, fabric,
                                                   world["base"] / "logs" / f"{node_id}.log"))
    for name in SITES:
        net = world["sites"][name]
        for spec in net.orderer_specs() + net.peer_specs() + net.ca_specs():
            nodes.wait_healthy(spec, None, net.layout, timeout=60)
    assert [p.pid for p in world["procs"] if p.poll() is not None] == []
    for name in SITES:            # not nodes of a run directory: network.sh did not start them
        assert run_dir_processes(world["sites"][name].layout.root) == []


def test_network_sh_up_joins_the_running_nodes_and_deploys(world) -> None:
    sites = world["sites"]
    for name in SITES:
        notes: list[str] = []
        sites[name].report = notes.append
        sites[name].up()          # org1's right after the orderers joined: block 0 waits for their leader
        world["notes"][name] = notes
        net = sites[name]
        for spec in net.orderer_specs() + net.peer_specs() + net.ca_specs():
            assert f"{spec.node_id} already runs outside this tool (e.g. docker compose): left alone" in notes, notes
        assert not [n for n in notes if n.startswith("started ")], notes
    assert "orderer1 joined channel 'fl' (osnadmin)" in world["notes"]["orderer"]
    for o in SITES[1:]:
        assert f"peer0.{o} joined channel 'fl'" in world["notes"][o]
    for name in SITES:            # status shows the nodes compose runs as up, with their heights
        shown = {s.node_id: s for s in sites[name].status() if s.kind != "chaincode"}
        assert shown and all(s.up and s.pid is None and s.health == "OK (run outside this tool)"
                             for s in shown.values()), shown
        assert all(s.height for s in shown.values() if s.kind == "peer"), shown


def test_each_site_deploys_the_chaincode_its_server_native(world) -> None:
    sites = world["sites"]
    for o in SITES[1:]:     # deploy counts the nodes compose runs (healthy, not ours) as up
        sites[o].deploy(product_deployment(sites[o].config))
    for o in SITES[1:]:
        assert set(nodes.load_state(sites[o].layout)["nodes"]) == {f"cc-fedfabric.{o}"}   # the only native node


def _eventually(read, timeout: float = 20.0):
    """``read()`` once it stops raising (a peer commits a block a moment after another one)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_the_consortium_works_through_the_containerized_nodes(world) -> None:
    sites = world["sites"]
    config = sites["org1"].config
    gw, admin = open_client("org1", "Admin", config=config, run_root=sites["org1"].layout.root)
    with gw:
        admin.wait_ready()
        assert init_consortium(admin, config)
    for org in ("org2", "org3"):          # read on each other site, through its own peer
        gw, reader = open_client(org, "User1", config=config, run_root=sites[org].layout.root)
        with gw:
            assert [o["msp_id"] for o in _eventually(reader.list_orgs)] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    for name in SITES:       # what the containers wrote stayed in their own data directories
        net = sites[name]
        assert [p for p in key_files(net.layout.root) if not p.is_relative_to(net.layout.home(name))] == []
        data = net.layout.node_dir(name, "orderer1" if name == "orderer" else f"peer0.{name}")
        assert (data / "ledger").is_dir()


def test_stopping_leaves_nothing_behind(world) -> None:
    composerun.stop(world["procs"])
    assert all(p.poll() is not None for p in world["procs"])
    roots: list[Path] = [net.layout.root for net in world["sites"].values()]
    for net in world["sites"].values():
        net.down()
    assert all(run_dir_processes(r) == [] and not r.exists() for r in roots)
