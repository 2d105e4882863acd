"""Fixtures of the interop tests: a chaincode of their own on the session's network, and a profile.

``interop_cc`` deploys the echo chaincode (``tests/ledger/echo_chaincode.py``: ``put``/``get``, any
other function fails with status 500) as chaincode ``interop`` with the endorsement policy
``AND('Org1MSP.peer','Org2MSP.peer')``, on its own chaincode-server ports, so these tests depend
neither on the product contract nor on another test file's chaincode. ``org1_profile`` is what
``network.sh profile --org org1`` writes, for ``User1``. ``generated_net`` is a network whose crypto
material is generated in a temporary run directory, with no node started (for the offline tests).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fedfabric.network.deploy import ChaincodeDeployment
from fedfabric.network.fabricbin import locate
from fedfabric.network.manager import SiteManager
from fedfabric.network.profile import ProfileFiles, write_profile

from ..conftest import test_config
from ..ledger.live_helpers import channel_of, connect_org, wait_until_endorsable

CHAINCODE = "interop"
PORT_OFFSET = 30        # servers at each org's chaincode_server_port + 30 (echo + 10, rtdemo + 20)
POLICY = "AND('Org1MSP.peer','Org2MSP.peer')"


@pytest.fixture(scope="session")
def generated_net(tmp_path_factory: pytest.TempPathFactory) -> SiteManager:
    net = SiteManager(test_config(), tmp_path_factory.mktemp("generated-run"), fabric=locate())
    net.generate()
    return net


@pytest.fixture(scope="session")
def interop_cc(live_network) -> str:
    live_network.deploy(ChaincodeDeployment(name=CHAINCODE, version="1", port_offset=PORT_OFFSET, policy=POLICY,
                                            command=(sys.executable, "-m", "tests.ledger.echo_chaincode")))
    with connect_org(live_network, "org1") as gw:
        # until gossip has told org1's gateway about org2's peer, no endorsement plan satisfies AND(...)
        wait_until_endorsable(gw.get_network(channel_of(live_network)).get_contract(CHAINCODE), "put", ["warmup", "1"])
    return CHAINCODE


@pytest.fixture(scope="session")
def org1_profile(live_network, tmp_path_factory: pytest.TempPathFactory) -> ProfileFiles:
    return write_profile(live_network.layout, "org1", "User1", tmp_path_factory.mktemp("profile") / "org1")


def private_key_files(root: Path) -> list[Path]:
    """Regular files under ``root`` (links not followed) that hold a PEM private key."""
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and b"PRIVATE KEY" in p.read_bytes()]
