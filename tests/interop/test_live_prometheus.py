"""Live: the peers' and orderers' own Prometheus endpoints, scraped over TLS, move with transactions.

Scrapes ``/metrics`` on peer0.org1 and on every orderer (the Gateway sends each transaction to one
orderer of its choosing) with the text-format parser of ``prometheus_client``, submits a few
transactions to the ``interop`` chaincode through org1's Gateway, scrapes again and checks the
counters against what the ledger says happened.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fedfabric.cli.network import _print_status

from ..ledger.live_helpers import channel_of, connect_org

pytestmark = pytest.mark.live

Samples = dict[tuple[str, frozenset], float]
TXS = 3


def _context(ca: Path, client_dir: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if client_dir is not None:
        ctx.load_cert_chain(str(client_dir / "client.crt"), str(client_dir / "client.key"))
    return ctx


def scrape(url: str, ca: Path, client_dir: Path | None) -> Samples:
    """Every sample of a /metrics page, by (name as Fabric exposes it, labels). (The parser renames a
    counter's samples to ``<name>_total``, the OpenMetrics spelling; Fabric's names have no suffix.)"""
    with urllib.request.urlopen(url, timeout=5, context=_context(ca, client_dir)) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = family.name if family.type == "counter" and s.name == family.name + "_total" else s.name
            out[(name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when there are none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@pytest.fixture(scope="module")
def targets(live_network):
    """(node id, metrics URL, TLS CA, TLS client cert dir of the node's org) of peer0.org1 and each orderer."""
    layout = live_network.layout
    org1 = live_network.config.org("org1")
    peer = next(s for s in live_network.peer_specs() if s.node_id == org1.peer_node_id)
    out = [(peer.node_id, peer.metrics_url, peer.tls_ca, layout.user_dir(org1, "Admin") / "tls")]
    out += [(s.node_id, s.metrics_url, s.tls_ca, layout.orderer_admin_dir / "tls")
            for s in live_network.orderer_specs()]
    return out


def test_metrics_need_a_client_certificate_of_the_org(live_network, targets) -> None:
    node, url, ca, _ = targets[0]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5, context=_context(ca, None))
    assert err.value.code == 401
    # /healthz stays open, as the health checks of `network.sh up` need
    with urllib.request.urlopen(url.replace("/metrics", "/healthz"), timeout=5, context=_context(ca, None)) as resp:
        assert resp.status == 200


def test_counters_move_with_transactions(live_network, interop_cc, targets, capsys) -> None:
    channel = channel_of(live_network)
    before = {node: scrape(url, ca, client) for node, url, ca, client in targets}
    with connect_org(live_network, "org1") as gw:
        contract = gw.get_network(channel).get_contract(interop_cc)
        results = [contract.submit("put", args=[f"metrics-{i}-{time.time_ns()}", "v"]) for i in range(TXS)]
        assert all(r.status == "VALID" for r in results)
        assert contract.evaluate("get", args=["metrics-none"]) == b""
        height = gw.get_network(channel).qscc().chain_info()["height"]
    assert height > max(r.block_number for r in results)

    deadline = time.monotonic() + 10
    while True:   # every orderer has committed the last block (followers lag by a Raft round trip)
        after = {node: scrape(url, ca, client) for node, url, ca, client in targets}
        if all(value(s, "ledger_blockchain_height", channel=channel) >= height for s in after.values()) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    peer, orderers = targets[0][0], [t[0] for t in targets[1:]]
    b, a = before[peer], after[peer]
    assert value(b, "ledger_blockchain_height", channel=channel) < height == value(a, "ledger_blockchain_height",
                                                                                  channel=channel)
    valid = {"name": "ledger_transaction_count", "channel": channel, "chaincode": f"{interop_cc}:1",
             "transaction_type": "ENDORSER_TRANSACTION", "validation_code": "VALID"}
    name = valid.pop("name")
    assert value(a, name, **valid) - value(b, name, **valid) == TXS
    # org1's peer endorsed each submit and answered the evaluate
    proposals = {"chaincode": interop_cc, "channel": channel, "success": "true"}
    assert value(a, "endorser_proposal_duration_count", **proposals) \
        - value(b, "endorser_proposal_duration_count", **proposals) >= TXS + 1
    broadcast = {"channel": channel, "type": "ENDORSER_TRANSACTION", "status": "SUCCESS"}
    assert sum(value(after[o], "broadcast_processed_count", **broadcast)
               - value(before[o], "broadcast_processed_count", **broadcast) for o in orderers) == TXS
    for o in orderers:
        assert value(after[o], "ledger_blockchain_height", channel=channel) == height
        assert value(after[o], "consensus_etcdraft_committed_block_number", channel=channel) == height - 1
        assert value(after[o], "ledger_blockchain_height", channel=channel) \
            > value(before[o], "ledger_blockchain_height", channel=channel)

    # and `network.sh status` names the endpoints just scraped
    assert _print_status(live_network)
    out = capsys.readouterr().out
    for node, url, _, _ in targets:
        assert url in next(ln for ln in out.splitlines() if f" {node} " in ln)
