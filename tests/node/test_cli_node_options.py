"""`fedfabric node --metrics-port` and `--flower-client` through the CLI, on the memory ledger: the
running node's endpoint is announced, scraped while it runs and withdrawn when it stops; a port that
cannot be bound and a Flower client that cannot be used are one clear line and exit status 2."""
from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .test_cli_node_demo import _node, ledger  # noqa: F401  (the fixture)

needs_flwr = pytest.mark.skipif(importlib.util.find_spec("flwr") is None,
                                reason="flwr is not installed (pip install -e '.[flower]')")


def _samples(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples}


def test_a_running_node_serves_its_metrics_and_withdraws_them(ledger, tmp_path):  # noqa: F811
    seen: dict = {}

    def scrape() -> None:   # while the node runs: find its announcement, scrape until its key is registered
        end = time.monotonic() + 20
        while time.monotonic() < end and "register" not in seen:
            for f in (tmp_path / "fl" / "metrics").glob("*.json"):
                seen["entry"] = entry = json.loads(f.read_text())
                s = _samples(entry["url"])
                seen["round"] = s.get(("fedfabric_node_round", frozenset()))
                if s.get(("fedfabric_node_transactions_total",
                          frozenset({"function": "register", "outcome": "ok"}.items()))) == 1:
                    seen["register"] = True
            time.sleep(0.05)

    t = threading.Thread(target=scrape, daemon=True)
    t.start()
    res = _node(tmp_path, "--org", "org1", "--job", "j-all", "--timeout", "4", "--metrics-port", "0")
    t.join(25)
    assert res.exit_code == 1, res.output                       # --timeout passed: the job needs all three orgs
    assert seen.get("register") and seen["round"] == 1, seen
    entry = seen["entry"]
    assert entry["org"] == "org1" and entry["job"] == "j-all" and entry["url"].startswith("http://127.0.0.1:")
    assert f"Org1MSP metrics at {entry['url']}" in res.output
    assert list((tmp_path / "fl" / "metrics").glob("*.json")) == []   # withdrawn on the way out
    with pytest.raises(OSError):
        urllib.request.urlopen(entry["url"], timeout=2)


def test_a_metrics_port_in_use_is_a_clear_error(ledger, tmp_path):  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = _node(tmp_path, "--org", "org1", "--job", "j-all", "--metrics-port", str(port))
    assert res.exit_code == 2, res.output
    assert f"error: cannot serve the node's metrics on 127.0.0.1:{port}" in res.output
    assert "Traceback" not in res.output


@needs_flwr
@pytest.mark.parametrize("ref, message", [
    ("nocolon", "error: --flower-client must be package.module:factory"),
    ("tests.fl.flower_clients:missing", "error: tests.fl.flower_clients has no 'missing'"),
    ("tests.fl.flower_clients:tiny_fn", "error: job j-all: job j-all's model is fedfabric's 'logreg', not parameters "
                                        "from a Flower client; start the node without --flower-client"),
])
def test_a_flower_client_the_node_cannot_use_is_a_clear_error(ledger, tmp_path, ref, message):  # noqa: F811
    res = _node(tmp_path, "--org", "org1", "--job", "j-all", "--flower-client", ref)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
