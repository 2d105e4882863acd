"""Live: a consortium of four sites (the orderer org, org1, org2, org3), each in its own run directory,
set up the way separate machines would: every org initializes its own home, the definitions are
exchanged, the orderer org creates the channel from them, each org brings its own nodes up and joins
with block 0 fetched from an orderer, and each site approves the chaincode for its own org.

Ports of its own (tests/ports.py); every site is taken down at the end, also when a test fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

from fedfabric.client import open_client
from fedfabric.network import definition
from fedfabric.network.deploy import product_deployment
from fedfabric.network.manager import SiteManager
from fedfabric.node.bootstrap import init_consortium

from ..conftest import test_config
from ..ports import OFFSETS
from .keyscan import key_files
from .procs import run_dir_processes

pytestmark = pytest.mark.live
OFFSET = OFFSETS["sites"]
ORGS = ("org1", "org2", "org3")
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SiteManager]]:
    base = tmp_path_factory.mktemp("live-sites")
    config = test_config(OFFSET)
    out = {"orderer": SiteManager(config, base / "orderer", orderer=True, orgs=[])}
    out.update({o: SiteManager(config, base / o, orgs=[o]) for o in ORGS})
    try:
        yield out
    finally:
        for net in out.values():
            net.down()


def _exchange(sites: dict[str, SiteManager]) -> None:
    """Every site imports every other site's definition (the files the orgs send each other)."""
    for net in sites.values():
        for name, other in sites.items():
            if other is not net:
                own = other.layout.own_definition(name)
                definition.import_definition(net.layout, definition.load_definition(own, net.config))


def test_each_site_initializes_only_its_own_org(sites) -> None:
    t0 = time.monotonic()
    for net in sites.values():
        net.init_orgs()
    _exchange(sites)
    TIMES["init"] = time.monotonic() - t0
    for name, net in sites.items():
        assert [p for p in key_files(net.layout.root) if not p.is_relative_to(net.layout.home(name))] == []


def test_the_orderer_org_creates_the_channel_and_each_org_joins_from_its_own_site(sites) -> None:
    t0 = time.monotonic()
    sites["orderer"].up()
    for o in ORGS:
        assert not sites[o].layout.genesis_block.exists()
        sites[o].up()
        assert sites[o].layout.genesis_block.read_bytes() == sites["orderer"].layout.genesis_block.read_bytes()
    TIMES["up"] = time.monotonic() - t0
    for o in ORGS:
        status = {s.node_id: s for s in sites[o].status()}
        assert set(status) == {f"peer0.{o}", f"ca.{o}"} and all(s.up for s in status.values())
        assert status[f"peer0.{o}"].height == 1
    assert {s.node_id for s in sites["orderer"].status()} == {"orderer1", "orderer2", "orderer3"}


def test_each_site_approves_for_its_org_and_the_majority_commits(sites) -> None:
    notes: dict[str, list[str]] = {}
    for o in ORGS:
        notes[o] = []
        sites[o].report = notes[o].append
        sites[o].deploy(product_deployment(sites[o].config))
    assert any("approved by 1 of 3 orgs: not committed yet" in n for n in notes["org1"])
    assert not any("not committed yet" in n for n in notes["org2"])       # org2 made the majority
    assert "org3 approved the committed 'fedfabric' sequence 1" in notes["org3"]
    for o in ORGS:
        assert {s.node_id for s in sites[o].chaincode_specs()} == {f"cc-fedfabric.{o}"}


def test_the_consortium_works_across_the_sites(sites) -> None:
    config = sites["org1"].config
    gw, admin = open_client("org1", "Admin", config=config, run_root=sites["org1"].layout.root)
    with gw:
        admin.wait_ready()
        assert init_consortium(admin, config)
    gw, reader = open_client("org3", "User1", config=config, run_root=sites["org3"].layout.root)
    with gw:
        deadline = time.monotonic() + 20
        while True:
            try:
                orgs = reader.list_orgs()
                break
            except Exception:  # noqa: BLE001 - org3's peer commits the block a moment later
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
    assert [o["msp_id"] for o in orgs] == ["Org1MSP", "Org2MSP", "Org3MSP"]


def test_down_leaves_nothing_behind(sites) -> None:
    roots: list[Path] = [net.layout.root for net in sites.values()]
    for net in sites.values():
        net.down()
    assert all(run_dir_processes(r) == [] and not r.exists() for r in roots)
