"""consortium.yaml parsing: the shipped file, derived artefacts, and every validation error."""

from __future__ import annotations

import copy
from fractions import Fraction

import pytest
import yaml

from fedfabric.network import paths
from fedfabric.network.config import ConfigError, load_config, parse_config
from fedfabric.network import nodes
from fedfabric.network.layout import Layout
from fedfabric.network.manager import SiteManager
from fedfabric.network.material import configtx
from fedfabric.network.orginit import peer_org_crypto

from ..conftest import default_raw, shift_ports
from ..e2e.many_orgs import many_orgs_config
from ..e2e.test_live_ten_orgs import N as TEN
from ..ports import OFFSETS, org4_entry


def test_shipped_config_is_valid() -> None:
    c = load_config(paths.DEFAULT_CONFIG)
    assert c.channel == "fl"
    assert [o.name for o in c.orderer_org.orderers] == ["orderer1", "orderer2", "orderer3"]
    assert [o.msp_id for o in c.orgs] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    assert c.batch.timeout_ms <= 250
    assert c.total_stake == sum(o.stake for o in c.orgs) > 0
    assert c.chaincode.endorsement_quorum == Fraction(2, 3)
    ports = [p for node in c.node_ports().values() for p in node.values()]
    assert len(ports) == len(set(ports))


def test_fourth_org_is_a_config_edit(tmp_path) -> None:
    raw = default_raw()
    raw["orgs"].append({"name": "org4", "msp_id": "Org4MSP", "stake": 50,
                        "peer": {"name": "peer0", "port": 10051, "chaincode_port": 10052,
                                 "operations_port": 9447},
                        "chaincode_server_port": 9994, "node_port": 9964,
                        "ca": {"port": 10054, "operations_port": 9457}})
    c = parse_config(raw)
    assert c.org("org4").msp_id == "Org4MSP" and c.org("Org4MSP").stake == 50
    layout = Layout(tmp_path, c)
    tx = configtx(c, layout)["Profiles"]["FedFabricChannel"]
    app_orgs = tx["Application"]["Organizations"]
    assert [o["ID"] for o in app_orgs][-1] == "Org4MSP"
    assert app_orgs[-1]["AnchorPeers"] == [{"Host": "127.0.0.1", "Port": 10051}]
    assert peer_org_crypto(c.org("org4"))["PeerOrgs"][0]["Domain"] == "org4.fedfabric.local"
    assert c.org("org4").ca_node_id == "ca.org4" and c.node_ports()["ca.org4"] == {"listen": 10054,
                                                                                  "operations": 9457}


def test_every_org_has_a_ca_on_its_own_ports() -> None:
    c = load_config(paths.DEFAULT_CONFIG)
    assert {o.ca_node_id: (o.ca.port, o.ca.operations_port) for o in c.orgs} == {
        "ca.org1": (7054, 9454), "ca.org2": (8054, 9455), "ca.org3": (9054, 9456)}
    assert c.org("org2").ca.host_name == "ca.org2.fedfabric.local"


def _plan_ports(name: str, offset: int) -> dict[int, str]:
    """Every port the suite's network ``name`` listens on, with what it is."""
    if name == "ten-orgs":
        config = many_orgs_config(TEN, offset)
    else:
        raw = shift_ports(default_raw(), offset)
        if name in ("governance", "netns", "local"):
            raw["orgs"].append({**org4_entry(offset), "stake": 0})
        config = parse_config(raw)
    out: dict[int, str] = {}
    for node, ports in config.node_ports().items():
        extra = {}
        if name == "session" and node.startswith("cc."):   # the live tests' own chaincode servers
            extra = {f"+{k}": v + k for k in (10, 20, 30, 40) for v in ports.values()}
        for kind, port in {**ports, **extra}.items():
            out[port] = f"{name}:{node}.{kind}"
    return out


def test_the_suites_networks_never_collide_and_stay_out_of_the_ephemeral_range() -> None:
    """tests/ports.py: the networks on 127.0.0.1 (and a developer's, at offset 0) share no port, and no
    network listens where outgoing connections take their ports (at or above 32768, or this machine's
    ephemeral floor when lower)."""
    eph = nodes.ephemeral_ports()
    floor = min(32768, eph.start if eph else 32768)
    seen = _plan_ports("developer", 0)
    for name, offset in OFFSETS.items():
        ports = _plan_ports(name, offset)
        for port, what in ports.items():
            assert 1024 <= port < floor, f"{what} listens on {port}, outside 1024..{floor - 1}"
            if name != "netns":                              # inside namespaces of its own
                assert port not in seen, f"{what} collides with {seen[port]}"
        if name != "netns":
            seen.update(ports)


def test_the_port_taken_error_says_when_the_port_is_ephemeral(tmp_path) -> None:
    """An orderer's port inside the ephemeral range that something holds: the error says why such a port
    can be taken with no listener to blame, and where to move it."""
    eph = nodes.ephemeral_ports()
    if eph is None:
        pytest.skip("no /proc/sys/net/ipv4/ip_local_port_range on this machine")
    port = eph.start + 123
    raw = default_raw()
    raw["orderer_org"]["orderers"][0]["port"] = port
    net = SiteManager(parse_config(raw), tmp_path / "run")
    spec = net.orderer_specs()[0]
    msg = net._port_taken(spec, "listen", port)
    assert f"below {eph.start}" in msg and "ephemeral range" in msg
    assert "ephemeral" not in net._port_taken(spec, "listen", 7050)


def test_port_shift_moves_every_listener() -> None:
    c0 = parse_config(default_raw())
    c1 = parse_config(shift_ports(default_raw(), 1000))
    for node, ports in c0.node_ports().items():
        assert {k: v + 1000 for k, v in ports.items()} == c1.node_ports()[node]


def test_configtx_has_raft_consenters_and_low_latency_batching(tmp_path) -> None:
    c = parse_config(default_raw())
    p = configtx(c, Layout(tmp_path, c))["Profiles"]["FedFabricChannel"]
    assert p["Orderer"]["OrdererType"] == "etcdraft"
    assert [x["Port"] for x in p["Orderer"]["EtcdRaft"]["Consenters"]] == [7050, 7150, 7250]
    assert p["Orderer"]["BatchTimeout"] == "20ms"
    assert all(x["Host"] == "127.0.0.1" for x in p["Orderer"]["EtcdRaft"]["Consenters"])


def _mutate(path: str, value, base=None):
    raw = copy.deepcopy(base) if base is not None else default_raw()
    node = raw
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return raw


@pytest.mark.parametrize("path,value,message", [
    ("orgs.1.peer.port", 7051, "port 7051 already used by peer0.org1.listen"),
    ("orderer_org.orderers.0.admin_port", 80, "outside [1024, 65535]"),
    ("orgs.0.stake", -5, "orgs[0].stake: -5 is outside"),
    ("orgs.0.stake", "lots", "orgs[0].stake: expected an integer"),
    ("orgs.2.msp_id", "Org1MSP", "duplicate msp_id: Org1MSP"),
    ("orgs.0.peer", KeyError, "orgs[0].peer: missing"),
    ("channel", "Bad Channel!", "channel: invalid name"),
    ("host", "0.0.0.0", "host: '0.0.0.0' cannot be dialled"),
    ("host", "node1.example", "host: 'node1.example' is not an IP address"),
    ("orgs.1.host", "::", "orgs[1].host: '::' cannot be dialled"),
    ("orderer_org.host", "224.0.0.1", "orderer_org.host: '224.0.0.1' cannot be dialled"),
    ("batch.timeout_ms", 5, "batch.timeout_ms: 5 is outside"),
    ("batch.absolute_max_bytes", "lots", "invalid size"),
    ("orderer_org.consensus", "kafka", "not supported"),
    ("chaincode.endorsement_quorum", "3/2", "must be in (0, 1]"),
    ("chaincode.updates_block_to_live", 0, "chaincode.updates_block_to_live: 0 is outside [1, "),
    ("chaincode.updates_block_to_live", "soon", "chaincode.updates_block_to_live: expected an integer"),
    ("orderer_org.orderers", [], "non-empty list"),
    ("orgs.0.ca", KeyError, "orgs[0].ca: missing"),
    ("orgs.0.ca", 7054, "orgs[0].ca: expected a mapping"),
    ("orgs.0.ca.port", KeyError, "orgs[0].ca.port: missing"),
    ("orgs.0.ca.port", 80, "orgs[0].ca.port: 80 is outside [1024, 65535]"),
    ("orgs.0.ca.operations_port", "x", "orgs[0].ca.operations_port: expected an integer"),
    ("orgs.1.ca.port", 7051, "ca.org2.listen: port 7051 already used by peer0.org1.listen"),
    ("orgs.0.ca.operations_port", 9991, "ca.org1.operations: port 9991 already used by cc.org1.chaincode-server"),
    ("orgs.2.ca.operations_port", 9454, "ca.org3.operations: port 9454 already used by ca.org1.operations"),
    ("orgs.0.ca.name", "Bad Name", "orgs[0].ca.name: invalid name"),
    ("orgs.0.ca.name", "peer0", "orgs[0].ca.name: 'peer0' is taken by the org's peer"),
    ("orgs.0.ca.name", "cc", "orgs[0].ca.name: 'cc' is taken by the org's chaincode server"),
])
def test_invalid_config_is_refused_with_the_field_named(path, value, message) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_mutate(path, value))
    assert message in str(err.value)


@pytest.mark.parametrize("path,value,message", [
    ("batch", [1, 2], "batch: expected a mapping, got a list ([1, 2])"),
    ("batch", "fast", "batch: expected a mapping, got a string ('fast')"),
    ("orderer_org", "orderers", "orderer_org: expected a mapping, got a string ('orderers')"),
    ("orderer_org", [], "orderer_org: expected a mapping, got a list ([])"),
    ("orderer_org.orderers", {"name": "orderer1"}, "orderer_org.orderers: expected a non-empty list, got a mapping"),
    ("orderer_org.orderers.1", "orderer2", "orderer_org.orderers[1]: expected a mapping, got a string ('orderer2')"),
    ("orderer_org.orderers.0.name", 7, "orderer_org.orderers[0].name: invalid name 7"),
    ("orderer_org.msp_id", ["OrdererMSP"], "orderer_org.msp_id: invalid name ['OrdererMSP']"),
    ("orgs", {"org1": {}}, "orgs: expected a non-empty list, got a mapping"),
    ("orgs", "org1", "orgs: expected a non-empty list, got a string ('org1')"),
    ("orgs.0", ["org1"], "orgs[0]: expected a mapping, got a list (['org1'])"),
    ("orgs.2", 3, "orgs[2]: expected a mapping, got an integer (3)"),
    ("orgs.0.peer", "peer0", "orgs[0].peer: expected a mapping, got a string ('peer0')"),
    ("orgs.1.peer", [7051], "orgs[1].peer: expected a mapping, got a list ([7051])"),
    ("orgs.0.peer.name", {"x": 1}, "orgs[0].peer.name: invalid name {'x': 1}"),
    ("orgs.0.peer.port", "7051", "orgs[0].peer.port: expected an integer, got '7051'"),
    ("orgs.0.peer.port", 7051.0, "orgs[0].peer.port: expected an integer, got 7051.0"),
    ("orgs.0.peer.port", True, "orgs[0].peer.port: expected an integer, got True"),
    ("orgs.0.ca", ["ca"], "orgs[0].ca: expected a mapping (port, operations_port), got a list (['ca'])"),
    ("orgs.0.name", ["org1"], "orgs[0].name: invalid name ['org1']"),
    ("orgs.0.stake", [100], "orgs[0].stake: expected an integer, got [100]"),
    ("chaincode", "fedfabric", "chaincode: expected a mapping, got a string ('fedfabric')"),
    ("chaincode", ["fedfabric"], "chaincode: expected a mapping, got a list (['fedfabric'])"),
    ("chaincode.version", ["1.0"], "chaincode.version: expected a non-empty string, got a list (['1.0'])"),
    ("chaincode.version", {"major": 1}, "chaincode.version: expected a non-empty string, got a mapping"),
    ("chaincode.endorsement_quorum", [2, 3], "chaincode.endorsement_quorum: invalid fraction [2, 3]"),
    ("chaincode.name", 5, "chaincode.name: invalid name 5"),
    ("batch.absolute_max_bytes", ["99 MB"], "batch.absolute_max_bytes: invalid size ['99 MB']"),
    ("batch.timeout_ms", "200ms", "batch.timeout_ms: expected an integer, got '200ms'"),
    ("domain", ["fedfabric.local"], "domain: invalid name ['fedfabric.local']"),
    ("domain", "Bad Domain", "domain: invalid name 'Bad Domain'"),
    ("host", ["127.0.0.1"], "host: expected an IP address, got a list (['127.0.0.1'])"),
    ("orgs.0.host", 7, "orgs[0].host: expected an IP address, got an integer (7)"),
    ("channel", 12, "channel: invalid name 12"),
])
def test_wrong_types_are_config_errors_naming_the_field(path, value, message) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_mutate(path, value))
    assert str(err.value).startswith(message), str(err.value)


def test_top_level_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^consortium file: top level must be a mapping, got a list"):
        parse_config(["channel", "fl"])


def _paths(node, prefix=""):
    """Every mapping key and list index of a YAML document, as dotted paths."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for k, v in items:
        path = f"{prefix}{k}"
        yield path
        yield from _paths(v, path + ".")


WRONG_VALUES = [None, 0, 7, -1, 1.5, True, "", "x", [], [1], {}, {"a": 1}]


def test_any_wrong_value_anywhere_is_a_config_error_or_accepted() -> None:
    """No structural mistake anywhere in the file escapes as a TypeError/AttributeError/KeyError."""
    tried, base = 0, default_raw()
    for path in _paths(base):
        for value in WRONG_VALUES:
            try:
                parse_config(_mutate(path, value, base))
            except ConfigError:
                pass
            tried += 1
    assert tried > 400


def test_all_zero_stake_refused() -> None:
    raw = default_raw()
    for o in raw["orgs"]:
        o["stake"] = 0
    with pytest.raises(ConfigError, match="total stake must be positive"):
        parse_config(raw)


def test_load_config_names_the_file(tmp_path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("orgs: [\n")
    with pytest.raises(ConfigError, match=f"{bad}: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read consortium file"):
        load_config(tmp_path / "missing.yaml")
    bad.write_text(yaml.safe_dump({**default_raw(), "orgs": "none"}))
    with pytest.raises(ConfigError, match=f"{bad}: orgs: expected a non-empty list"):
        load_config(bad)


def test_collections_follow_the_config() -> None:
    """Update payloads are purged after the configured number of blocks and never pushed during endorsement."""
    from fedfabric.network.deploy import product_deployment

    raw = default_raw()
    raw["chaincode"]["updates_block_to_live"] = 7
    cols = {c["name"]: c for c in product_deployment(parse_config(raw)).collections}
    assert {n: c["blockToLive"] for n, c in cols.items()} == {"fedfabricUpdates": 7}
    for c in cols.values():
        assert c["maxPeerCount"] == 0 and c["requiredPeerCount"] == 0
        assert c["policy"] == "OR('Org1MSP.member','Org2MSP.member','Org3MSP.member')"
        assert c["memberOnlyRead"] and c["memberOnlyWrite"]
