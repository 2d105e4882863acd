"""docker-compose-fabric.yml stays generated from consortium.yaml (same nodes, env, 127.0.0.1)."""

from __future__ import annotations

import yaml

from fedfabric.network import paths
from fedfabric.network.compose import CONTAINER_RUN, render
from fedfabric.network.config import load_config
from fedfabric.network.fabricbin import locate
from fedfabric.network.manager import Network


def _net() -> Network:
    return Network(load_config(paths.DEFAULT_CONFIG), paths.REPO_ROOT / "run", fabric=locate())


def test_committed_compose_file_is_current() -> None:
    committed = (paths.REPO_ROOT / "docker-compose-fabric.yml").read_text()
    assert committed == render(_net()), "run `network/network.sh compose` and commit the result"


def test_compose_services_mirror_the_native_nodes() -> None:
    doc = yaml.safe_load(render(_net()))
    net = _net()
    assert set(doc["services"]) == {s.node_id for s in net.orderer_specs() + net.peer_specs() + net.ca_specs()}
    assert {n for n, svc in doc["services"].items() if svc["image"].startswith("hyperledger/fabric-ca:")} \
        == {"ca.org1", "ca.org2", "ca.org3"}
    for name, svc in doc["services"].items():
        assert svc["network_mode"] == "host" and "ports" not in svc
        env = svc["environment"]
        for key, value in env.items():
            assert "/work/" not in value and str(paths.REPO_ROOT) not in value, (name, key)
            if key.endswith(("LISTENADDRESS", "_ADDRESS", "ENDPOINT")) and value:
                assert value == "127.0.0.1" or value.startswith("127.0.0.1:"), (name, key, value)
        assert any(CONTAINER_RUN in v for v in env.values())
        tls_flags = [v for k, v in env.items() if k.endswith("TLS_ENABLED")]
        assert tls_flags and all(v == "true" for v in tls_flags), name
