"""Shared fixtures. Live tests bring up their own real Fabric network on shifted ports.

The test network uses ``network/consortium.yaml`` with every port moved by ``TEST_PORT_OFFSET``
and its own run directory, so it never collides with a developer's network from ``network.sh up``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "app", ROOT / "chaincode"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from fedfabric.network import paths  # noqa: E402
from fedfabric.network.config import ConsortiumConfig, parse_config  # noqa: E402

from tests.ports import OFFSETS, is_port  # noqa: E402

TEST_PORT_OFFSET = OFFSETS["session"]


def shift_ports(raw: Any, offset: int) -> Any:
    """A copy of a consortium document with every ``*port`` value moved by ``offset``."""
    if isinstance(raw, dict):
        return {k: (v + offset if is_port(k, v) else shift_ports(v, offset)) for k, v in raw.items()}
    if isinstance(raw, list):
        return [shift_ports(v, offset) for v in raw]
    return raw


def default_raw() -> dict:
    return yaml.safe_load(paths.DEFAULT_CONFIG.read_text())


def test_config(offset: int = TEST_PORT_OFFSET) -> ConsortiumConfig:
    return parse_config(shift_ports(default_raw(), offset))


test_config.__test__ = False  # not a test function


@pytest.fixture(scope="session")
def live_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator["SiteManager"]:
    """A real Fabric network (3 Raft orderers, 3 peers, channel joined, the fedfabric chaincode deployed)
    for the whole session."""
    from fedfabric.network.deploy import product_deployment
    from fedfabric.network.manager import SiteManager

    run_root = tmp_path_factory.mktemp("fabric-run")
    net = SiteManager(test_config(), run_root)
    try:
        net.up()
        net.deploy(product_deployment(net.config))  # the consortium contract, as `network.sh up` does
        yield net
    finally:
        net.down()
