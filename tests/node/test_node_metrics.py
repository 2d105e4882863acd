"""A training node's own Prometheus metrics (node.metrics): what three nodes count over a real job on the
memory ledger agrees with what the ledger recorded, a transient refusal shows as a retry and the last
error, the endpoint is served over HTTP and parsed with prometheus_client's own text parser, announced
in the run directory for `network.sh status`, and withdrawn when the node stops."""
from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fedfabric import __version__
from fedfabric.node.metrics import DUTIES, NodeMetrics, known_endpoints

from tests.chaincode.harness import ORGS

from .memledger import drive
from .test_node_robustness import FlakyClient, _world
from .test_nodes_memledger import _job


def _value(node, name, **labels):
    v = node.metrics.registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


def test_three_nodes_count_what_the_ledger_recorded(make_node):
    led, admin, nodes = _world(make_node, _job("j-m", rounds=2))
    drive(led, nodes)
    assert admin.get_job("j-m")["rounds_finalized"] == 2
    sizes = {r: {m: p["update"]["size"] for m, p in admin.round_report("j-m", r)["participants"].items()}
             for r in (1, 2)}
    for n in nodes:
        assert _value(n, "fedfabric_node_rounds_total", outcome="finalized") == 2   # the last round too
        assert _value(n, "fedfabric_node_rounds_total", outcome="failed") == 0
        assert _value(n, "fedfabric_node_round") == 2 and _value(n, "fedfabric_node_job_rounds") == 2
        assert _value(n, "fedfabric_node_phase", fedfabric_node_phase="closed") == 1
        assert _value(n, "fedfabric_node_updates_submitted_total") == 2
        assert _value(n, "fedfabric_node_votes_total", approve="true") == 2
        for duty, times in (("train", 2), ("submit", 2), ("compute", 2), ("vote", 2), ("register", 1)):
            assert _value(n, "fedfabric_node_duty_seconds_count", duty=duty) == times, duty
        assert _value(n, "fedfabric_node_duty_seconds_sum", duty="train") > 0
        assert _value(n, "fedfabric_node_transactions_total", function="submit_update", outcome="ok") == 2
        assert _value(n, "fedfabric_node_phase_seconds_count", phase="submitting") >= 1
        # bytes: its own payloads went into the submissions; the others' came from their nodes (or its peer)
        assert _value(n, "fedfabric_node_sent_bytes_total", channel="submission") == sum(s[n.msp] for s in sizes.values())
        others = sum(b for s in sizes.values() for m, b in s.items() if m != n.msp)
        got = (_value(n, "fedfabric_node_received_bytes_total", channel="exchange")
               + _value(n, "fedfabric_node_received_bytes_total", channel="peer"))
        assert got == others
        assert _value(n, "fedfabric_node_retries_total", reason="transient_refusal") == 0
    # what the nodes served each other over the exchange is what they fetched from it
    served = sum(_value(n, "fedfabric_node_sent_bytes_total", channel="exchange") for n in nodes)
    fetched = sum(_value(n, "fedfabric_node_received_bytes_total", channel="exchange") for n in nodes)
    assert served == fetched > 0


def test_a_transient_refusal_is_a_retry_and_the_last_error(make_node):
    flaky = {ORGS[1]: lambda led, m: FlakyClient(led, m, fn="submit_update")}
    led, admin, nodes = _world(make_node, _job("j-m503", rounds=1), flaky)
    drive(led, nodes)
    n = nodes[1]
    assert _value(n, "fedfabric_node_retries_total", reason="transient_refusal") == 1
    assert _value(n, "fedfabric_node_transactions_total", function="submit_update", outcome="transient") == 1
    assert _value(n, "fedfabric_node_transactions_total", function="submit_update", outcome="ok") == 1
    assert _value(n, "fedfabric_node_problems_total", level="warning") >= 1
    info = [s for s in n.metrics.registry.collect() if s.name == "fedfabric_node_last_error"][0].samples[0].labels
    assert info["level"] == "warning" and info["message"].startswith("submit_update refused for now")
    assert _value(n, "fedfabric_node_last_error_timestamp_seconds") > 0
    assert _value(nodes[0], "fedfabric_node_retries_total", reason="transient_refusal") == 0
    assert [s for s in nodes[0].metrics.registry.collect()
            if s.name == "fedfabric_node_last_error"][0].samples[0].labels["level"] == "none"


def _scrape(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_the_endpoint_is_served_announced_and_withdrawn(tmp_path):
    m = NodeMetrics("Org1MSP", "j-x", "org1")
    url = m.serve("127.0.0.1", 0)
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics") and not url.endswith(":0/metrics")
        m.announce(tmp_path, "org1", "Org1MSP", "j-x")
        [entry] = known_endpoints(tmp_path)
        assert entry == {"org": "org1", "msp_id": "Org1MSP", "job": "j-x", "url": url, "pid": os.getpid(),
                         "started": entry["started"], "up": True}
        before = _scrape(url)
        assert before[("fedfabric_node_info", frozenset({"org": "org1", "msp_id": "Org1MSP", "job": "j-x",
                                                          "version": __version__}.items()))] == 1
        assert all(before[("fedfabric_node_duty_seconds_count", frozenset({"duty": d}.items()))] == 0 for d in DUTIES)
        m.observe("state", {"round": 3, "rounds": 5, "state": "submitting"})
        with m.duty("train"):
            pass
        m.sent("submission", 1234)
        m.problem(logging.ERROR, "vote refused by the contract: nope (status 400)")
        after = _scrape(url)
        assert after[("fedfabric_node_round", frozenset())] == 3
        assert after[("fedfabric_node_phase", frozenset({"fedfabric_node_phase": "submitting"}.items()))] == 1
        assert after[("fedfabric_node_duty_seconds_count", frozenset({"duty": "train"}.items()))] == 1
        assert after[("fedfabric_node_sent_bytes_total", frozenset({"channel": "submission"}.items()))] == 1234
        assert after[("fedfabric_node_last_error_info", frozenset({"level": "error", "message":
                                                                   "vote refused by the contract: nope (status 400)"}
                                                                  .items()))] == 1
    finally:
        m.close()
    assert known_endpoints(tmp_path) == []           # withdrawn
    with pytest.raises(urllib.error.URLError):       # and no longer served
        urllib.request.urlopen(url, timeout=2)


def test_an_announcement_whose_process_is_gone_is_listed_as_gone(tmp_path, capsys):
    from fedfabric.cli.network import _print_node_metrics

    d = tmp_path / "fl" / "metrics"
    d.mkdir(parents=True)
    (d / "org2.j-y.json").write_text(json.dumps({"org": "org2", "msp_id": "Org2MSP", "job": "j-y",
                                                 "url": "http://127.0.0.1:1/metrics", "pid": 2 ** 22 + 12345}))
    (d / "junk.json").write_text("not json")
    [entry] = known_endpoints(tmp_path)
    assert entry["org"] == "org2" and entry["up"] is False
    _print_node_metrics(tmp_path)
    out = capsys.readouterr().out
    assert "org2" in out and "j-y" in out and "gone" in out and "http://127.0.0.1:1/metrics" in out
    _print_node_metrics(tmp_path / "elsewhere")
    assert "none announced" in capsys.readouterr().out
