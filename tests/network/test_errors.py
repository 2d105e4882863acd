"""Failure modes of ``up``: a port taken, a missing binary, a node dying during start-up.

Each must fail with an error naming the node (and its log), and leave nothing running.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from fedfabric.network import fabricbin
from fedfabric.network.fabricbin import FabricBinaryError, FabricInstall
from fedfabric.network.manager import Network
from fedfabric.network.nodes import NodeError

from ..conftest import test_config

OFFSET = 20000   # away from the live-test network's ports


def _our_processes(run_root: Path) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if f"FEDFABRIC_RUN_DIR={run_root}".encode() in (d / "environ").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_missing_binary_is_named(tmp_path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    net = Network(test_config(OFFSET), tmp_path / "run", fabric=FabricInstall(empty, tmp_path / "cfg"))
    with pytest.raises(FabricBinaryError, match=r"Fabric binary 'peer' not found at .*bin/peer"):
        net.up()
    assert not (tmp_path / "run" / "crypto").exists()


def test_port_taken_names_node_and_port_and_starts_nothing(tmp_path) -> None:
    config = test_config(OFFSET)
    o2 = config.orderer_org.orderers[1]
    net = Network(config, tmp_path / "run", fabric=fabricbin.locate())
    with socket.socket() as s:
        s.bind(("127.0.0.1", o2.admin_port))
        s.listen()
        with pytest.raises(NodeError) as err:
            net.up()
    msg = str(err.value)
    assert "orderer2" in msg and f"127.0.0.1:{o2.admin_port}" in msg and "already in use" in msg
    assert _our_processes(net.layout.root) == []
    assert not net.layout.genesis_block.exists()


def test_node_dying_during_up_is_reported_with_its_log(tmp_path) -> None:
    real = fabricbin.locate()
    real.check()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in fabricbin.REQUIRED:
        if name != "orderer":
            os.symlink(real.binary(name), fake_bin / name)
    script = fake_bin / "orderer"
    script.write_text("#!/bin/sh\necho 'panic: cannot open ledger: disk on fire' >&2\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)

    net = Network(test_config(OFFSET), tmp_path / "run", fabric=FabricInstall(fake_bin, real.config_dir))
    with pytest.raises(NodeError) as err:
        net.up()
    msg = str(err.value)
    assert "exited with code 3 during start-up" in msg
    assert "orderer" in msg and str(net.layout.log_file("orderer1")).rsplit("/", 1)[0] in msg
    assert "disk on fire" in msg
    assert _our_processes(net.layout.root) == []
    net.down()
    assert not net.layout.root.exists()
