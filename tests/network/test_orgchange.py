"""Org admission and removal as channel config updates (real configtxgen/configtxlator/peer CLIs, the
channel's config taken from a genesis block instead of a running orderer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedfabric.network import channel, definition, fabricbin, orgchange
from fedfabric.network.channel import org_admin
from fedfabric.network.config import parse_org
from fedfabric.network.manager import SiteManager
from fedfabric.network.orgchange import OrgChangeError, admins_missing, read_update

from ..conftest import test_config
from .test_org_init import ORG4

CONFIG = test_config(20000)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A one-machine site with org1..3 (genesis block written) and org4 initialized on a site of its own."""
    base = tmp_path_factory.mktemp("orgchange")
    net = SiteManager(CONFIG, base / "site", fabric=fabricbin.locate())
    net.generate()
    newcomer = SiteManager(CONFIG, base / "org4", fabric=fabricbin.locate(), orgs=[])
    d4 = newcomer.init_new_org(parse_org({**ORG4, "stake": 0}, "org4", CONFIG.domain))
    fabric = net.fabric
    channel.translate(fabric, "proto_decode", "common.Block", net.layout.genesis_block, base / "genesis.json")
    cfg = json.loads((base / "genesis.json").read_text())["data"]["data"][0]["payload"]["data"]["config"]
    return {"net": net, "org4": newcomer, "d4": d4, "cfg": cfg, "base": base}


@pytest.fixture
def offline(world, monkeypatch):
    """The channel's current config is the genesis block's."""
    monkeypatch.setattr(channel, "fetch_config", lambda *a, **k: json.loads(json.dumps(world["cfg"])))
    return world


def test_org_group_of_a_definition_is_the_genesis_group(world) -> None:
    net = world["net"]
    for org in net.config.orgs:
        d = definition.load_definition(net.layout.definition_file(org.name), CONFIG)
        group = orgchange.org_group(net.fabric, net.layout, d)
        assert group == world["cfg"]["channel_group"]["groups"]["Application"]["groups"][org.msp_id]


def test_an_admission_update_adds_the_org_and_collects_signatures(offline, tmp_path) -> None:
    net, d4 = offline["net"], offline["d4"]
    org1, org2 = net.config.org("org1"), net.config.org("org2")
    out = tmp_path / "add-org4.pb"
    update = orgchange.propose_add(net.fabric, net.config, net.layout, org_admin(net.layout, org1), d4, out)
    assert (update.added, update.signers, update.channel) == (("Org4MSP",), ("Org1MSP",), "fl")
    assert update.removed(["Org1MSP", "Org2MSP", "Org3MSP"]) == ()
    orgchange.check_adds(net.fabric, net.layout, update, d4)
    channel.sign_update(net.fabric, net.layout, org_admin(net.layout, org2), out)
    again = read_update(out)
    assert again.signers == ("Org1MSP", "Org2MSP") and again.digest == update.digest
    written = orgchange.update_json(net.fabric, net.layout, again)["write_set"]["groups"]["Application"]
    assert written["groups"]["Org4MSP"]["values"]["AnchorPeers"]["value"]["anchor_peers"] == [
        {"host": "127.0.0.1", "port": ORG4["peer"]["port"]}]
    assert again.describe().endswith("adds Org4MSP; signed by Org1MSP, Org2MSP")


def test_an_update_is_checked_against_the_definition(offline, tmp_path) -> None:
    net, d4 = offline["net"], offline["d4"]
    update = orgchange.propose_add(net.fabric, net.config, net.layout, org_admin(net.layout, net.config.orgs[0]),
                                   d4, tmp_path / "u.pb")
    d1 = definition.load_definition(net.layout.definition_file("org1"), CONFIG)
    with pytest.raises(OrgChangeError, match="does not add just Org1MSP"):
        orgchange.check_adds(net.fabric, net.layout, update, d1)
    with pytest.raises(OrgChangeError, match="does not remove just Org4MSP"):
        orgchange.check_removes(update, "Org4MSP", ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"])
    impostor = definition.Definition({**d4.doc, "msp": d1.doc["msp"], "admins": d1.doc["admins"]})
    with pytest.raises(OrgChangeError, match="is not the one its definition makes"):
        orgchange.check_adds(net.fabric, net.layout, update, impostor)


def test_a_member_cannot_be_added_twice_nor_a_stranger_removed(offline, tmp_path) -> None:
    net = offline["net"]
    admin = org_admin(net.layout, net.config.orgs[0])
    d1 = definition.load_definition(net.layout.definition_file("org1"), CONFIG)
    with pytest.raises(OrgChangeError, match="Org1MSP is already an org of channel 'fl'"):
        orgchange.propose_add(net.fabric, net.config, net.layout, admin, d1, tmp_path / "x.pb")
    with pytest.raises(OrgChangeError, match="Org9MSP is not an org of channel 'fl'"):
        orgchange.propose_remove(net.fabric, net.config, net.layout, admin, "Org9MSP", tmp_path / "y.pb")


def test_a_removal_update_drops_the_group(offline, tmp_path) -> None:
    net = offline["net"]
    update = orgchange.propose_remove(net.fabric, net.config, net.layout, org_admin(net.layout, net.config.orgs[1]),
                                      "Org3MSP", tmp_path / "rm.pb")
    members = ["Org1MSP", "Org2MSP", "Org3MSP"]
    assert (update.added, update.removed(members), update.signers) == ((), ("Org3MSP",), ("Org2MSP",))
    orgchange.check_removes(update, "Org3MSP", members)
    with pytest.raises(OrgChangeError, match="does not remove just Org2MSP"):
        orgchange.check_removes(update, "Org2MSP", members)
    assert update.describe().endswith("leaves the channel with Org1MSP, Org2MSP; signed by Org2MSP")


@pytest.mark.parametrize("members,signers,missing", [
    (["A", "B", "C"], ["A"], 1), (["A", "B", "C"], ["A", "B"], 0), (["A", "B", "C", "D"], ["A", "B"], 1),
    (["A", "B", "C", "D"], ["A", "B", "C"], 0), (["A", "B", "C"], ["A", "A", "X"], 1), (["A"], [], 1),
])
def test_majority_of_admins(members, signers, missing) -> None:
    assert admins_missing(members, signers) == missing


def test_garbage_is_not_an_update(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\x01\x02not a protobuf")
    with pytest.raises(OrgChangeError, match="not a channel config update envelope"):
        read_update(bad)


def test_retired_org_leaves_the_site_view_and_comes_back_on_import(world, tmp_path) -> None:
    net = world["net"]
    layout = net.layout
    d3 = definition.load_definition(layout.definition_file("org3"), CONFIG)
    definition.retire(layout, "org3")
    assert [o.name for o in definition.site_config(CONFIG, layout.root).orgs] == ["org1", "org2"]
    definition.import_definition(layout, d3)
    assert [o.name for o in definition.site_config(CONFIG, layout.root).orgs] == ["org1", "org2", "org3"]
