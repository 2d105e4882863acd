"""Every orderer, peer and Fabric CA is configured to serve Prometheus metrics, and status lists them."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedfabric.cli.network import _print_status
from fedfabric.network.fabricbin import locate
from fedfabric.network.manager import SiteManager

from ..conftest import test_config

PROVIDER = {"orderer": "ORDERER_METRICS_PROVIDER", "peer": "CORE_METRICS_PROVIDER",
            "ca": "FABRIC_CA_SERVER_METRICS_PROVIDER"}


@pytest.fixture
def net(tmp_path: Path) -> SiteManager:
    return SiteManager(test_config(), tmp_path / "run", fabric=locate())


def test_prometheus_on_every_operations_endpoint(net: SiteManager) -> None:
    specs = net.orderer_specs() + net.peer_specs() + net.ca_specs()
    assert {s.kind for s in specs} == set(PROVIDER)
    for spec in specs:
        assert spec.env[PROVIDER[spec.kind]] == "prometheus", spec.node_id
        assert spec.metrics_url == f"https://127.0.0.1:{spec.ports['operations']}/metrics"
        assert spec.health_url == spec.metrics_url.replace("/metrics", "/healthz")
    for spec in net.orderer_specs():
        assert spec.env["ORDERER_OPERATIONS_TLS_ENABLED"] == "true"
        assert spec.env["ORDERER_OPERATIONS_TLS_CLIENTROOTCAS"] == f"[{spec.tls_ca}]"
    for spec in net.peer_specs():
        # /metrics wants a client certificate; the peer reads its CA list as a space-separated string
        assert spec.env["CORE_OPERATIONS_TLS_ENABLED"] == "true"
        assert spec.env["CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES"] == str(spec.tls_ca)
        assert not any(c in spec.env["CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES"] for c in "[], ")


def test_status_lists_each_metrics_endpoint(net: SiteManager, capsys: pytest.CaptureFixture[str]) -> None:
    statuses = {s.node_id: s for s in net.status()}
    for spec in net.orderer_specs() + net.peer_specs() + net.ca_specs():
        assert statuses[spec.node_id].metrics == spec.metrics_url and not statuses[spec.node_id].up
    assert _print_status(net) is False
    out = capsys.readouterr().out
    assert "metrics" in out
    for spec in net.orderer_specs() + net.peer_specs():
        line = next(ln for ln in out.splitlines() if f" {spec.node_id} " in ln)
        assert spec.metrics_url in line
