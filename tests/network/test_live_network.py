"""Live: a real Fabric network on this machine, checked with the Fabric CLIs, then torn down."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from fedfabric.network.manager import Network

import yaml

from fedfabric.network import paths

from ..conftest import default_raw, shift_ports, test_config

pytestmark = pytest.mark.live
OFFSET = 30000   # its own ports: this test owns its network's whole life cycle


def _listeners(pid: int) -> set[tuple[str, int]]:
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[3]
            host, _, port = local.rpartition(":")
            found.add((host, int(port)))
    return found


def _speaks_tls(port: int, ca: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.version() is not None
        except ssl.SSLError as exc:
            # mutual-TLS listeners may reject us after the handshake started: still TLS
            return "CERTIFICATE" in str(exc).upper() or "ALERT" in str(exc).upper()


def _cli(net: Network, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = net.layout.root.parent / "consortium.yaml"
    if not cfg.exists():
        cfg.write_text(yaml.safe_dump(shift_ports(default_raw(), OFFSET)))
    return subprocess.run([str(paths.NETWORK_DIR / "network.sh"), "--config", str(cfg),
                           "--run-dir", str(net.layout.root), *args],
                          capture_output=True, text=True, timeout=60)


def test_up_status_idempotent_down(tmp_path) -> None:
    net = Network(test_config(OFFSET), tmp_path / "run")
    try:
        t0 = time.monotonic()
        net.up()
        assert time.monotonic() - t0 < 120

        heights = net.heights()   # osnadmin channel list / peer channel getinfo
        assert set(heights) == {"orderer1", "orderer2", "orderer3", "peer0.org1", "peer0.org2", "peer0.org3"}
        assert len(set(heights.values())) == 1 and None not in heights.values(), heights

        statuses = {s.node_id: s for s in net.status()}
        assert set(statuses) == set(heights) | {"ca.org1", "ca.org2", "ca.org3"}
        assert {n for n, s in statuses.items() if s.kind == "ca"} == {"ca.org1", "ca.org2", "ca.org3"}
        assert all(s.up and s.health == "OK" for s in statuses.values()), statuses
        # every listener (orderers, peers, Fabric CAs: API and operations) on 127.0.0.1 and TLS
        for spec in net.specs():
            pid = statuses[spec.node_id].pid
            listeners = _listeners(pid)
            assert {port for _, port in listeners} == set(spec.ports.values()), (spec.node_id, listeners)
            assert {host for host, _ in listeners} == {"127.0.0.1"}, (spec.node_id, listeners)
            for port in spec.ports.values():
                assert _speaks_tls(port, spec.tls_ca), f"{spec.node_id} port {port} is not TLS"

        cli = _cli(net, "status")
        assert cli.returncode == 0, cli.stderr
        for node_id in statuses:
            assert node_id in cli.stdout
        logs = _cli(net, "logs", "orderer1", "-n", "5")
        assert logs.returncode == 0 and len(logs.stdout.strip().splitlines()) == 5
        bad = _cli(net, "logs", "orderer9")
        assert bad.returncode == 2 and "unknown node 'orderer9'" in bad.stderr

        pids_before = {n: s.pid for n, s in statuses.items()}
        net.up()   # idempotent: nothing restarted
        assert {s.node_id: s.pid for s in net.status()} == pids_before
    finally:
        stopped = net.down()
    assert sorted(stopped) == sorted(statuses)   # 3 orderers, 3 peers, 3 CAs
    for pid in pids_before.values():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not net.layout.root.exists()
