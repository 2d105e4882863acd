"""Which ports each network of the suite listens on: one offset per network, in one place.

Every network a test brings up is the default consortium (``network/consortium.yaml``, ports 7050-9993)
with every port moved by its offset. Two rules, checked by ``tests/network/test_config.py``:

- no two networks that can run at the same time on 127.0.0.1 share a port (the session's network runs
  through the whole suite; the other modules run one after another, each taking its network down);
- every port stays below the kernel's ephemeral range (32768-60999 by default), from which outgoing
  connections take their local ports at random: a listener there finds its port taken now and then
  (CI once lost a run to an orderer whose port a client connection held).

The offsets are multiples of 3000, one network's width (7050 .. 10031, the interop chaincode servers
included), so the networks interleave without a gap; 0 is left to a developer's own ``network.sh up``.
The netns test listens inside namespaces of its own, where no loopback port can meet its ports.
"""
from __future__ import annotations

import os
from typing import Any

SESSION = int(os.environ.get("FEDFABRIC_TEST_PORT_OFFSET", "10000"))  # the session's live_network

OFFSETS: dict[str, int] = {
    "session": SESSION,            # tests/conftest.py live_network, interop, hostile shim (whole session)
    "demo": SESSION + 3000,        # tests/e2e/test_demo.py: `fedfabric demo` on a network of its own
    "local": 20000,                # test_errors, test_enroll, test_org_init: one at a time, each test's own
    "ten-orgs": 21000,             # tests/e2e/test_live_ten_orgs.py (its orgs at 7300.. + offset)
    "live-network": -6000,         # tests/network/test_live_network.py
    "compose": -3000,              # tests/network/test_live_compose.py
    "governance": 3000,            # tests/network/test_live_governance.py (+ org4 at 9447 .. 10054 + offset)
    "netns": 6000,                 # tests/network/test_live_netns.py, inside its namespaces (+ org4)
    "sites": 16000,                # tests/network/test_live_sites.py
}

def is_port(key: str, value: Any) -> bool:
    """Is this entry of a consortium document a port (``port`` or ``*_port``, an integer)?"""
    return (key == "port" or key.endswith("_port")) and isinstance(value, int)


def listen_ports(raw: Any) -> set[int]:
    """Every port a consortium document names."""
    if isinstance(raw, dict):
        return {p for k, v in raw.items() for p in ({v} if is_port(k, v) else listen_ports(v))}
    if isinstance(raw, list):
        return {p for v in raw for p in listen_ports(v)}
    return set()


# The fourth org the governance and netns tests add: its ports before the offset.
ORG4_PORTS = {"peer": 10051, "chaincode": 10052, "peer_operations": 9447, "chaincode_server": 9994,
              "node": 9964, "ca": 10054, "ca_operations": 9457}


def org4_entry(offset: int, host: str | None = None) -> dict:
    """The consortium entry of ``org4`` with its ports moved by ``offset`` (on ``host`` when given)."""
    p = {k: v + offset for k, v in ORG4_PORTS.items()}
    entry = {"name": "org4", "msp_id": "Org4MSP",
             "peer": {"name": "peer0", "port": p["peer"], "chaincode_port": p["chaincode"],
                      "operations_port": p["peer_operations"]},
             "chaincode_server_port": p["chaincode_server"], "node_port": p["node"],
             "ca": {"port": p["ca"], "operations_port": p["ca_operations"]}}
    if host is not None:
        entry["host"] = host
    return entry
