"""consortium.yaml parsing: the shipped file, derived artefacts, and every validation error."""

from __future__ import annotations

import copy
from fractions import Fraction

import pytest
import yaml

from fedfabric.network import paths
from fedfabric.network.config import ConfigError, load_config, parse_config
from fedfabric.network.layout import Layout
from fedfabric.network.material import configtx, crypto_config

from ..conftest import default_raw, shift_ports


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
                        "chaincode_server_port": 9994})
    c = parse_config(raw)
    assert c.org("org4").msp_id == "Org4MSP" and c.org("Org4MSP").stake == 50
    layout = Layout(tmp_path, c)
    tx = configtx(c, layout)["Profiles"]["FedFabricChannel"]
    app_orgs = tx["Application"]["Organizations"]
    assert [o["ID"] for o in app_orgs][-1] == "Org4MSP"
    assert app_orgs[-1]["AnchorPeers"] == [{"Host": "127.0.0.1", "Port": 10051}]
    assert [o["Domain"] for o in crypto_config(c)["PeerOrgs"]][-1] == "org4.fedfabric.local"


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
    assert p["Orderer"]["BatchTimeout"] == "200ms"
    assert all(x["Host"] == "127.0.0.1" for x in p["Orderer"]["EtcdRaft"]["Consenters"])


def _mutate(path: str, value):
    raw = default_raw()
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
    ("host", "0.0.0.0", "only listens on 127.0.0.1"),
    ("batch.timeout_ms", 5, "batch.timeout_ms: 5 is outside"),
    ("batch.absolute_max_bytes", "lots", "invalid size"),
    ("orderer_org.consensus", "kafka", "not supported"),
    ("chaincode.endorsement_quorum", "3/2", "must be in (0, 1]"),
    ("orderer_org.orderers", [], "non-empty list"),
])
def test_invalid_config_is_refused_with_the_field_named(path, value, message) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_mutate(path, value))
    assert message in str(err.value)


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
