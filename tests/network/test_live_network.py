"""Live: a real Fabric network on this machine, checked with the Fabric CLIs, then torn down.

One network (ports of its own from tests/ports.py, its own run dir) for the whole module; the tests run in order:
bring-up and listeners, a config transaction every node must reach, a deploy retried after a partial
approval, a redeploy at a new sequence, a definition whose policy text no command line could carry,
a banded stake policy enforced by the peers, and down leaving no process behind.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from fedfabric.network import channel, deploy as ccdeploy, lifecycle, nodes, paths
from fedfabric.network.deploy import ChaincodeDeployment
from fedfabric.network.manager import SiteManager

from ..conftest import default_raw, shift_ports, test_config
from ..ports import OFFSETS
from .procs import run_dir_processes

pytestmark = pytest.mark.live
OFFSET = OFFSETS["live-network"]   # its own ports: this module owns its network's whole life cycle
ECHO = (sys.executable, "-m", "tests.ledger.echo_chaincode")
ORDERERS = {"orderer1", "orderer2", "orderer3"}
PEERS = {"peer0.org1", "peer0.org2", "peer0.org3"}
CAS = {"ca.org1", "ca.org2", "ca.org3"}
SERVERS = {"cc-echo.org1", "cc-echo.org2", "cc-echo.org3"}
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteManager]:
    notes: list[str] = []
    n = SiteManager(test_config(OFFSET), tmp_path_factory.mktemp("live-network") / "run", report=notes.append)
    n.notes = notes  # type: ignore[attr-defined]
    try:
        t0 = time.monotonic()
        n.up()
        TIMES["up"] = time.monotonic() - t0
        yield n
    finally:
        n.down()   # a no-op once test_down_stops_everything ran


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


def _cli(net: SiteManager, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = net.layout.root.parent / "consortium.yaml"
    if not cfg.exists():
        cfg.write_text(yaml.safe_dump(shift_ports(default_raw(), OFFSET)))
    return subprocess.run([str(paths.NETWORK_DIR / "network.sh"), "--config", str(cfg),
                           "--run-dir", str(net.layout.root), *args],
                          capture_output=True, text=True, timeout=60)


def _fabric_cli(net: SiteManager, binary: str, args: list[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(net.fabric.binary(binary)), *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def _cli_channel_view(net: SiteManager) -> dict[str, dict]:
    """Every node's channel info straight from the Fabric CLIs: osnadmin channel list --channelID
    (height, status, consensusRelation) on each orderer, peer channel getinfo on each peer."""
    out: dict[str, dict] = {}
    admin = net.layout.orderer_admin_dir / "tls"
    for o in net.config.orderer_org.orderers:
        text = _fabric_cli(net, "osnadmin", [
            "channel", "list", "--channelID", net.config.channel, "-o", f"127.0.0.1:{o.admin_port}",
            "--ca-file", str(net.layout.orderer_tls_ca), "--client-cert", str(admin / "client.crt"),
            "--client-key", str(admin / "client.key")])
        out[o.name] = json.loads(text[text.index("{"):])
    for org in net.config.orgs:
        text = _fabric_cli(net, "peer", ["channel", "getinfo", "-c", net.config.channel],
                           env=channel.peer_admin_env(net.config, net.layout, org))
        out[org.peer_node_id] = json.loads(re.search(r"Blockchain info:\s*(\{.*\})", text).group(1))
    return out


def _statuses(net: SiteManager) -> dict:
    return {s.node_id: s for s in net.status()}


def test_up_status_listeners_idempotent(net: SiteManager) -> None:
    assert TIMES["up"] < 120
    statuses = _statuses(net)
    assert set(statuses) == ORDERERS | PEERS | CAS
    assert all(s.up and s.health == "OK" for s in statuses.values()), statuses
    # every listener (orderers, peers, Fabric CAs: API and operations) on 127.0.0.1 and TLS
    for spec in net.specs():
        listeners = _listeners(statuses[spec.node_id].pid)
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
    assert {n: s.pid for n, s in _statuses(net).items()} == pids_before


def test_a_config_transaction_reaches_every_node(net: SiteManager) -> None:
    """Right after up every node trivially sits at the genesis height; one ordered config
    transaction (new batch settings, signed by the orderer org's admin) must reach all six."""
    before = _cli_channel_view(net)
    assert {info["height"] for info in before.values()} == {1}
    new = replace(net.config.batch, timeout_ms=150, max_message_count=5)
    height = net.apply_batch(new)            # waits for all nodes through _wait_same_height(min 2)
    assert height == 2
    after = _cli_channel_view(net)
    assert set(after) == ORDERERS | PEERS
    assert {info["height"] for info in after.values()} == {2}, after
    for name in ORDERERS:
        assert after[name]["status"] == "active" and after[name]["consensusRelation"] == "consenter", after[name]
    peer_hashes = {after[p]["currentBlockHash"] for p in PEERS}
    assert len(peer_hashes) == 1                # the same block 1, not just the same count
    assert channel.read_batch(net.fabric, net.config, net.layout) == new
    assert net.apply_batch(new) == 2             # already in force: no transaction
    assert _cli_channel_view(net)["orderer1"]["height"] == 2


def test_deploy_retried_after_a_partial_approval_commits(net: SiteManager) -> None:
    dep = ChaincodeDeployment(name="echo", version="1", command=ECHO)
    org1 = net.config.orgs[0]
    pkg, _ = ccdeploy.prepare_package(net.config, net.layout, dep, org1)
    pkg_id = lifecycle.package_id(net.fabric, net.config, net.layout, org1, pkg)
    args = dict(name="echo", version="1", sequence=1, policy=dep.endorsement_policy(net.config), pkg_id=pkg_id,
                collections=None)
    assert lifecycle.approve(net.fabric, net.config, net.layout, org1, **args) is True
    # a deploy that failed right here left org1's approval behind; Fabric refuses to repeat it
    assert lifecycle.approve(net.fabric, net.config, net.layout, org1, **args) is False
    net.notes.clear()
    t0 = time.monotonic()
    assert net.deploy(dep) == 1
    TIMES["deploy v1"] = time.monotonic() - t0
    assert "org1 already approved 'echo' sequence 1: not asked again" in net.notes
    committed = lifecycle.committed(net.fabric, net.config, net.layout, net.config.orgs[2], "echo")
    assert committed["sequence"] == 1 and committed["version"] == "1"
    assert committed["approvals"] == {"Org1MSP": True, "Org2MSP": True, "Org3MSP": True}
    assert _echo_round_trip(net, "k1", "v1") == b"v1"


def _echo_round_trip(net: SiteManager, key: str, value: str) -> bytes:
    from tests.ledger.live_helpers import connect_org, wait_until_endorsable

    with connect_org(net, "org2") as gw:
        contract = gw.get_network(net.config.channel).get_contract("echo")
        res = wait_until_endorsable(contract, "put", [key, value])
        assert res.status == "VALID"
        return contract.evaluate("get", args=[key])


def test_redeploy_at_a_new_sequence_restarts_the_servers(net: SiteManager) -> None:
    before = _statuses(net)
    assert {n for n, s in before.items() if s.kind == "chaincode"} == SERVERS
    assert all(before[n].up for n in SERVERS), before
    old_pids = {n: before[n].pid for n in SERVERS}
    old_children = {pid for n in SERVERS for pid in nodes.group_members(old_pids[n])}
    t0 = time.monotonic()
    assert net.deploy(ChaincodeDeployment(name="echo", version="2", command=ECHO)) == 2
    TIMES["redeploy v2"] = time.monotonic() - t0
    committed = lifecycle.committed(net.fabric, net.config, net.layout, net.config.orgs[0], "echo")
    assert committed["sequence"] == 2 and committed["version"] == "2"
    after = _statuses(net)
    assert all(after[n].up and after[n].health == "OK" for n in SERVERS), after
    assert all(after[n].pid != old_pids[n] for n in SERVERS)
    assert not any(Path(f"/proc/{pid}").exists() for pid in old_children)   # supervisors and servers gone
    assert _echo_round_trip(net, "k2", "v2") == b"v2"
    cli = _cli(net, "status")
    assert cli.returncode == 0 and all(n in cli.stdout for n in SERVERS), cli.stdout


def test_a_policy_longer_than_a_command_line_argument_is_deployed_and_enforced(net: SiteManager) -> None:
    """The definition goes to _lifecycle as envelope bytes: a policy text over the peer CLI's 128 KiB
    argument cap (org1 alone, or 7,000 orgs together) is committed and the peers enforce it."""
    from fedfabric.ledger import CommitError
    from tests.ledger.live_helpers import connect_org

    others = ",".join(f"'Member{i:04d}MSP.peer'" for i in range(7000))
    text = f"OR('Org1MSP.peer',AND({others}))"
    assert len(text) > 128 * 1024
    t0 = time.monotonic()
    assert net.deploy(ChaincodeDeployment(name="echo", version="2", command=ECHO, policy=text)) == 3
    TIMES["redeploy, 140 KB policy"] = time.monotonic() - t0
    committed = lifecycle.committed(net.fabric, net.config, net.layout, net.config.orgs[1], "echo")
    assert committed["sequence"] == 3

    def put(contract, value: str, orgs: list[str]):
        return _put(contract, "k3", value, orgs)

    with connect_org(net, "org2") as gw:
        contract = gw.get_network(net.config.channel).get_contract("echo")
        with pytest.raises(CommitError) as ei:      # org2 and org3 endorse: not what the policy asks
            put(contract, "no", ["Org2MSP", "Org3MSP"])
        assert ei.value.code == "ENDORSEMENT_POLICY_FAILURE"
    with connect_org(net, "org1") as gw:
        contract = gw.get_network(net.config.channel).get_contract("echo")
        assert put(contract, "v3", ["Org1MSP"]).status == "VALID"
        assert contract.evaluate("get", args=["k3"]) == b"v3"


def _put(contract, key: str, value: str, orgs: list[str]):
    """Submit echo's put endorsed by ``orgs``, waiting out the chaincode servers' restart after a deploy."""
    from fedfabric.ledger import EndorseError

    deadline = time.monotonic() + 60
    while True:
        try:
            return contract.submit("put", args=[key, value], endorsing_orgs=orgs)
        except EndorseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_banded_stake_policy_is_enforced_by_the_peers_exactly(net: SiteManager) -> None:
    """A banded form of the stake rule (chaincode/fedfabric_cc/policy.py: OR over bands of two class
    pairs, in a run where the first band asks only for its increment) as a chaincode definition: the
    peers accept exactly the subsets of the three orgs that hold 2/3 of the stake. Four classes: Org1
    900, Org2 500, Org3 400, two orgs of 100 that never sign."""
    from fedfabric.ledger import CommitError
    from fedfabric_cc import policy
    from fedfabric_protocol import stakerule
    from tests.ledger.live_helpers import connect_org

    stakes = {"Org1MSP": 900, "Org2MSP": 500, "Org3MSP": 400, "Member0001MSP": 100, "Member0002MSP": 100}
    classes = stakerule.stake_classes(stakes)
    # bands of the 900 and 100 classes in one run: the band needing 400 more asks for Org3 alone (what
    # holding 400 adds to holding 500), as Org2 is in the next: OR(AND(Org1, OR(the 100s), Org3), AND(Org1, Org2))
    root, _ = policy._banded(classes, (0, 3), 2 * sum(stakes.values()), 3, 10**6)
    assert root[0] == "band" and len(root[1]) == 2 and root[1][0][1] == ("any", (1, 2), ((0, 1),))
    text = policy.to_string(policy._expand(root, classes, 10**6))
    assert text.count("OR(") == 2
    assert net.deploy(ChaincodeDeployment(name="echo", version="3", command=ECHO, policy=text)) == 4
    with connect_org(net, "org1") as gw:
        contract = gw.get_network(net.config.channel).get_contract("echo")
        for k in (3, 1, 2):
            for orgs in combinations(["Org1MSP", "Org2MSP", "Org3MSP"], k):
                if stakerule.wins(stakes, 2, 3, orgs):       # {1,2} and {1,2,3} hold 1400 and 1800 of 2000
                    assert _put(contract, "k4", "+".join(orgs), list(orgs)).status == "VALID", orgs
                else:
                    with pytest.raises(CommitError) as ei:
                        _put(contract, "k4", "+".join(orgs), list(orgs))
                    assert ei.value.code == "ENDORSEMENT_POLICY_FAILURE", orgs
        assert contract.evaluate("get", args=["k4"]) == b"Org1MSP+Org2MSP"


def test_down_stops_everything(net: SiteManager) -> None:
    root = net.layout.root
    running = run_dir_processes(root)
    nodes_up = {n: s.pid for n, s in _statuses(net).items() if s.up}
    assert set(nodes_up) == ORDERERS | PEERS | CAS | SERVERS
    assert len(running) > len(nodes_up)          # chaincode servers run under their supervisors
    t0 = time.monotonic()
    stopped = net.down()
    TIMES["down"] = time.monotonic() - t0
    assert sorted(stopped) == sorted(nodes_up)
    assert run_dir_processes(root) == [], [Path(f"/proc/{p}/cmdline").read_bytes() for p in run_dir_processes(root)]
    assert not root.exists()
    print("\nlive network timings (s):", {k: round(v, 1) for k, v in TIMES.items()})
