"""Channel agreement (what _wait_same_height accepts) and config updates built with configtxlator."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fedfabric.network import channel, fabricbin
from fedfabric.network.layout import Layout
from fedfabric.network.manager import ChannelState, SiteManager, convergence_problem
from fedfabric.network.nodes import NodeError

from ..conftest import test_config

ORDERERS = ("orderer1", "orderer2", "orderer3")
PEERS = ("peer0.org1", "peer0.org2", "peer0.org3")


def view(height: int | None = 2, **overrides: ChannelState) -> dict[str, ChannelState]:
    v = {o: ChannelState(height, "active", "consenter") for o in ORDERERS}
    v.update({p: ChannelState(height) for p in PEERS})
    v.update({k.replace("_", "."): st for k, st in overrides.items()})
    return v


@pytest.mark.parametrize("v,min_height,problem", [
    (view(2), 2, None),
    (view(1), 1, None),
    (view(1), 2, "every node at height 1, expected at least 2"),
    (view(2, peer0_org2=ChannelState(None)), 1, "not on the channel or not answering: peer0.org2"),
    (view(2, orderer3=ChannelState(None, "unknown", "unknown")), 1,
     "not on the channel or not answering: orderer3"),
    (view(1, orderer2=ChannelState(1, "onboarding", "consenter")), 1,
     "orderers not active consenters: orderer2 (onboarding, consenter)"),
    (view(1, orderer1=ChannelState(1, "active", "follower")), 1,
     "orderers not active consenters: orderer1 (active, follower)"),
    (view(3, peer0_org3=ChannelState(2)), 1, "heights differ:"),
    (view(2, orderer2=ChannelState(3, "active", "consenter")), 1, "heights differ:"),
])
def test_convergence_problem(v, min_height, problem) -> None:
    got = convergence_problem(v, min_height)
    if problem is None:
        assert got is None
    else:
        assert got is not None and got.startswith(problem), got


def _net(tmp_path: Path, views: list[dict[str, ChannelState]]) -> SiteManager:
    net = SiteManager(test_config(20000), tmp_path / "run", fabric=fabricbin.FabricInstall(tmp_path, tmp_path))
    seq = iter(views)
    last: list[dict[str, ChannelState]] = []

    def channel_view() -> dict[str, ChannelState]:
        last[:] = [next(seq, last[0] if last else views[-1])]
        return last[0]
    net.channel_view = channel_view  # type: ignore[method-assign]
    return net


def test_wait_same_height_waits_for_laggards_and_the_target(tmp_path) -> None:
    net = _net(tmp_path, [view(1), view(2, peer0_org1=ChannelState(1)), view(2)])
    assert net._wait_same_height(min_height=2, timeout=10) == 2


def test_wait_same_height_is_not_fooled_by_a_trivial_height(tmp_path) -> None:
    """Everyone at the genesis height is not 'caught up' when a later block was ordered."""
    net = _net(tmp_path, [view(1)])
    with pytest.raises(NodeError) as err:
        net._wait_same_height(min_height=2, timeout=1)
    msg = str(err.value)
    assert msg.startswith("nodes did not converge on one channel height within 1s: every node at height 1, "
                          "expected at least 2; logs: orderer1: ")
    assert f"peer0.org3: {tmp_path}/run/logs/peer0.org3.log" in msg


def test_wait_same_height_is_not_fooled_by_an_orderer_outside_the_cluster(tmp_path) -> None:
    net = _net(tmp_path, [view(1, orderer3=ChannelState(1, "onboarding", "follower"))])
    with pytest.raises(NodeError, match=r"orderers not active consenters: orderer3 \(onboarding, follower\)"):
        net._wait_same_height(timeout=1)


def _genesis_config(tmp_path: Path) -> tuple[fabricbin.FabricInstall, Layout, dict]:
    """A real genesis block (each org's cryptogen, configtxgen from the definitions), decoded to the
    channel config."""
    fabric = fabricbin.locate()
    net = SiteManager(test_config(20000), tmp_path / "run", fabric=fabric)
    net.generate()
    layout = net.layout
    channel.translate(fabric, "proto_decode", "common.Block", layout.genesis_block, tmp_path / "block.json")
    block = json.loads((tmp_path / "block.json").read_text())
    return fabric, layout, block["data"]["data"][0]["payload"]["data"]["config"]


def test_batch_update_envelope_writes_only_the_batch_values(tmp_path) -> None:
    fabric, layout, cfg = _genesis_config(tmp_path)
    config = layout.config
    assert channel.batch_settings(cfg) == config.batch
    new = replace(config.batch, timeout_ms=150, max_message_count=5)
    updated = json.loads(json.dumps(cfg))
    channel._set_batch(updated, new)
    assert channel.batch_settings(updated) == new
    work = tmp_path / "work"
    work.mkdir()
    env = channel._update_envelope(fabric, config, work, cfg, updated)
    channel.translate(fabric, "proto_decode", "common.Envelope", env, work / "check.json")
    decoded = json.loads((work / "check.json").read_text())["payload"]
    assert decoded["header"]["channel_header"]["channel_id"] == config.channel
    assert decoded["header"]["channel_header"]["type"] == 2          # CONFIG_UPDATE
    update = decoded["data"]["config_update"]
    assert update["channel_id"] == config.channel
    written = update["write_set"]["groups"]["Orderer"]["values"]
    assert set(written) == {"BatchTimeout", "BatchSize"}
    assert written["BatchTimeout"]["value"]["timeout"] == "150ms"
    assert written["BatchSize"]["value"]["max_message_count"] == 5
    assert "Application" not in update["write_set"]["groups"] or not update["write_set"]["groups"][
        "Application"].get("values")


def test_update_config_without_a_change_submits_nothing(tmp_path, monkeypatch) -> None:
    fabric, layout, cfg = _genesis_config(tmp_path)
    monkeypatch.setattr(channel, "fetch_config", lambda *a, **k: json.loads(json.dumps(cfg)))
    calls = []
    monkeypatch.setattr(fabric.__class__, "run", lambda self, name, args, **kw: calls.append((name, args)) or "")
    assert channel.apply_batch(fabric, layout.config, layout, layout.config.batch) is False
    assert calls == []
    assert list((layout.root / "channel").glob("update-*")) == []   # work dir cleaned up
    with pytest.raises(ValueError, match="at least one signer"):
        channel.update_config(fabric, layout.config, layout, lambda c: None, [])


def test_update_signs_with_every_admin_and_the_last_submits(tmp_path, monkeypatch) -> None:
    fabric, layout, cfg = _genesis_config(tmp_path)
    config = layout.config
    monkeypatch.setattr(channel, "fetch_config", lambda *a, **k: json.loads(json.dumps(cfg)))
    real_run = fabric.__class__.run
    calls = []

    def run(self, name, args, env=None, **kw):
        if name == "peer":
            calls.append((args[:2], env["CORE_PEER_LOCALMSPID"], env["CORE_PEER_MSPCONFIGPATH"]))
            return ""
        return real_run(self, name, args, env=env, **kw)
    monkeypatch.setattr(fabric.__class__, "run", run)
    signers = [channel.org_admin(layout, config.orgs[0]), channel.org_admin(layout, config.orgs[1])]
    assert channel.update_config(fabric, config, layout, lambda c: channel._set_batch(
        c, replace(config.batch, timeout_ms=120)), signers) is True
    assert calls == [(["channel", "signconfigtx"], "Org1MSP", str(layout.user_msp(config.orgs[0]))),
                     (["channel", "update"], "Org2MSP", str(layout.user_msp(config.orgs[1])))]
    assert channel.orderer_admin(config, layout).msp_dir == layout.orderer_admin_dir / "msp"
