"""Node fixtures: per-org TLS identities for the node-to-node exchange, and nodes that are closed after the test."""
from __future__ import annotations

import pytest

from fedfabric.node.runtime import NodeOptions, OrgNode

from .memledger import MemClient, exchange_for, org_tls


@pytest.fixture(scope="session")
def tls():
    return org_tls([f"Org{i}MSP" for i in range(1, 8)])


@pytest.fixture
def make_node(tls, tmp_path):
    """``make_node(ledger, msp, job_id, client=None, recipe_for=None, **options)``: an OrgNode on the memory ledger with its own
    exchange on a free loopback port; every node made is closed when the test ends."""
    made = []

    def make(led, msp, job_id, client=None, workdir=None, recipe_for=None, **options):
        opts = {"grace": 0.0, "tick": 0.01, **options}
        n = OrgNode(client or MemClient(led, msp), msp, job_id, workdir or tmp_path / msp, NodeOptions(**opts),
                    exchange_settings=exchange_for(tls[msp]), recipe_for=recipe_for)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()
