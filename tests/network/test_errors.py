"""Failure modes of ``up``: a port taken, a missing binary, a node dying during start-up.

Each must fail with an error naming the node (and its log), and leave nothing running that the
failed call started.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from fedfabric.network import fabricbin, nodes, paths
from fedfabric.network.fabricbin import FabricBinaryError, FabricInstall
from fedfabric.network.manager import SiteManager
from fedfabric.network.nodes import NodeError

from ..conftest import test_config
from ..ports import OFFSETS
from .procs import run_dir_processes

OFFSET = OFFSETS["local"]   # away from the live-test network's ports


def _fake_bin(tmp_path: Path, fake: str, script: str) -> FabricInstall:
    """The real Fabric binaries, except ``fake``, which runs ``script``."""
    real = fabricbin.locate()
    real.check()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in fabricbin.REQUIRED:
        if name != fake:
            os.symlink(real.binary(name), fake_bin / name)
    path = fake_bin / fake
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return FabricInstall(fake_bin, real.config_dir)


def test_missing_binary_is_named(tmp_path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    net = SiteManager(test_config(OFFSET), tmp_path / "run", fabric=FabricInstall(empty, tmp_path / "cfg"))
    with pytest.raises(FabricBinaryError) as err:
        net.up()
    assert str(err.value) == (f"Fabric binary 'peer' not found at {empty}/peer (looked in {empty}); "
                              "build it with network/network.sh build")
    assert not (tmp_path / "run" / "crypto").exists()


def test_missing_binary_names_where_the_override_pointed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FEDFABRIC_FABRIC_BIN", str(tmp_path / "elsewhere"))
    with pytest.raises(FabricBinaryError) as err:
        fabricbin.locate().binary("orderer")
    assert str(err.value) == (f"Fabric binary 'orderer' not found at {tmp_path}/elsewhere/orderer (looked in "
                              f"{tmp_path}/elsewhere, from FEDFABRIC_FABRIC_BIN); build it with "
                              "network/network.sh build")


def test_port_taken_names_node_role_and_log_and_starts_nothing(tmp_path) -> None:
    config = test_config(OFFSET)
    o2 = config.orderer_org.orderers[1]
    net = SiteManager(config, tmp_path / "run", fabric=fabricbin.locate())
    with socket.socket() as s:
        s.bind(("127.0.0.1", o2.admin_port))
        s.listen()
        with pytest.raises(NodeError) as err:
            net.up()
    assert str(err.value) == (
        f"orderer2: admin port 127.0.0.1:{o2.admin_port} (the orderer's admin endpoint: osnadmin channel "
        f"participation) is already in use by pid {os.getpid()} ({Path(f'/proc/{os.getpid()}/comm').read_text().strip()}); "
        f"free it or change it in {paths.DEFAULT_CONFIG}. orderer2 was not started (its log would be "
        f"{tmp_path / 'run' / 'logs' / 'orderer2.log'})")
    assert run_dir_processes(net.layout.root) == []
    assert not net.layout.genesis_block.exists()


def test_peer_port_taken_names_the_peer(tmp_path) -> None:
    config = test_config(OFFSET)
    org3 = config.orgs[2]
    net = SiteManager(config, tmp_path / "run", fabric=fabricbin.locate())
    with socket.socket() as s:
        s.bind(("127.0.0.1", org3.peer.chaincode_port))
        with pytest.raises(NodeError) as err:
            net.up()
    msg = str(err.value)
    assert msg.startswith(f"peer0.org3: chaincode port 127.0.0.1:{org3.peer.chaincode_port} (the peer's "
                          "chaincode listener) is already in use")
    assert msg.endswith(f"peer0.org3 was not started (its log would be {tmp_path}/run/logs/peer0.org3.log)")
    assert run_dir_processes(net.layout.root) == []


def test_orderer_dying_during_up_is_reported_with_its_log(tmp_path) -> None:
    fabric = _fake_bin(tmp_path, "orderer",
                       "#!/bin/sh\necho 'panic: cannot open ledger: disk on fire' >&2\nexit 3\n")
    net = SiteManager(test_config(OFFSET), tmp_path / "run", fabric=fabric)
    with pytest.raises(NodeError) as err:
        net.up()
    msg = str(err.value)
    log = tmp_path / "run" / "logs" / "orderer1.log"
    assert msg.startswith(f"orderer1 exited with code 3 during start-up; log: {log}\n")
    assert "disk on fire" in msg
    assert msg.splitlines()[-1].startswith("rolled back: stopped ca.org1, ca.org2, ca.org3")
    assert run_dir_processes(net.layout.root) == []
    assert nodes.load_state(net.layout)["nodes"] == {}
    net.down()
    assert not net.layout.root.exists()


def _rolled_back(msg: str) -> set[str]:
    """The nodes named in the error's last line: 'rolled back: stopped A, B (started by this call; ...)'."""
    last = msg.splitlines()[-1]
    assert last.startswith("rolled back: stopped ") and last.endswith(
        " (started by this call; nodes that were already running are left alone)"), last
    return set(last[len("rolled back: stopped "):last.index(" (started")].split(", "))


FAKE_PEER = """#!/bin/sh
# 'peer node start' dies at once; the peer CLI (channel list/join) would fail the same way
echo "fake peer: refusing to start ($*)" >&2
exit 4
"""


def test_peer_dying_during_up_rolls_back_everything_this_up_started(tmp_path) -> None:
    net = SiteManager(test_config(OFFSET), tmp_path / "run", fabric=_fake_bin(tmp_path, "peer", FAKE_PEER))
    with pytest.raises(NodeError) as err:
        net.up()
    msg = str(err.value)
    log = tmp_path / "run" / "logs" / "peer0.org1.log"
    assert msg.startswith(f"peer0.org1 exited with code 4 during start-up; log: {log}\n")
    assert "fake peer: refusing to start (node start)" in msg
    assert _rolled_back(msg) - {"peer0.org2", "peer0.org3"} == {   # fake peers may still be exiting
        "orderer1", "orderer2", "orderer3", "ca.org1", "ca.org2", "ca.org3"}
    assert run_dir_processes(net.layout.root) == []
    assert nodes.load_state(net.layout)["nodes"] == {}
    net.down()
    assert not net.layout.root.exists()


def test_failed_up_leaves_nodes_that_were_already_running_alone(tmp_path) -> None:
    net = SiteManager(test_config(OFFSET), tmp_path / "run", fabric=_fake_bin(tmp_path, "peer", FAKE_PEER))
    try:
        net.generate()
        with net._locked() as state:   # orderer1 and ca.org2 up from an earlier call
            state.setdefault("nodes", {})
            net._start_all(state, [s for s in net.orderer_specs() + net.ca_specs()
                                   if s.node_id in ("orderer1", "ca.org2")], [])
        before = {n: i["pid"] for n, i in nodes.load_state(net.layout)["nodes"].items()}
        with pytest.raises(NodeError, match=r"^peer0.org1 exited with code 4 during start-up") as err:
            net.up()
        assert _rolled_back(str(err.value)) - {"peer0.org2", "peer0.org3"} == {
            "orderer2", "orderer3", "ca.org1", "ca.org3"}
        after = {n: i["pid"] for n, i in nodes.load_state(net.layout)["nodes"].items()}
        assert after == before
        assert sorted(run_dir_processes(net.layout.root)) == sorted(before.values())
    finally:
        net.down()
    assert run_dir_processes(net.layout.root) == []
