"""Live: three `fedfabric node --flower-client fedfabric.examples.flower_client:client_fn --metrics-port 0`
processes train a secure job whose model is the Flower client's (flwr's own NumPyClient, a small CNN on
the digits) on the real network. Each node's Prometheus endpoint is scraped with prometheus_client's
parser while the job runs and its counters move with the rounds; `fedfabric network status` lists the
three endpoints; the ledger's final model is the in-process run of the same clients bit for bit, the
updates carry the clients' sample counts and data fingerprints, and no transaction was invalidated."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("flwr", reason="flwr is not installed (pip install -e '.[flower]')")

import torch  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from fedfabric.artifacts import ArtifactStore, model_hash  # noqa: E402
from fedfabric.examples.flower_client import load_partition  # noqa: E402
from fedfabric.node.bootstrap import create_job  # noqa: E402
from fedfabric.node.demo import start_nodes, stop_nodes  # noqa: E402
from fedfabric.node.jobfile import parse_job  # noqa: E402
from fedfabric_protocol.spec import JobSpec  # noqa: E402

from tests.fl.flower_clients import in_process  # noqa: E402

from .test_live_federation import _wait, fed  # noqa: E402,F401  (the fixture)

pytestmark = pytest.mark.live
torch.set_num_threads(1)

EXAMPLE = "fedfabric.examples.flower_client:client_fn"
ORGS = ["org1", "org2", "org3"]
ROUNDS = 4
JOB = {"job_id": "e2e-flower", "dataset": "digits", "model": {"parameters": "client", "client": EXAMPLE},
       "rounds": ROUNDS, "partition": {"kind": "iid"}, "training": {"epochs": 1, "lr": 0.1, "batch_size": 32},
       "privacy": "secure", "quorum": "2/3", "min_participants": 2, "participants": ORGS,
       "windows": {"registration_s": 60, "submission_s": 60, "approval_s": 60}}


def _scrape(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples}


def _get(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_flower_clients_train_on_the_network_and_their_nodes_metrics_move(fed):  # noqa: F811
    net, cfg_path, admin, _ = fed
    root = net.layout.root
    msp_of = {o.name: o.msp_id for o in net.config.orgs}
    spec = JobSpec.from_dict(create_job(admin, parse_job(dict(JOB)), msp_of)["spec"])
    assert spec.model.arch_id == "flower"
    first_block = admin.contract.network.qscc().chain_info()["height"]
    extra = {o: ["--flower-client", EXAMPLE, "--metrics-port", "0"] for o in ORGS}
    t0 = time.monotonic()
    procs = start_nodes(ORGS, spec.job_id, root, cfg_path, extra)
    scrapes: dict[str, list[dict]] = {o: [] for o in ORGS}
    try:
        announced = root / "fl" / "metrics"
        urls = _wait(lambda: (lambda e: e if len(e) == 3 else None)(
            {json.loads(p.read_text())["org"]: json.loads(p.read_text())["url"]
             for p in announced.glob(f"*.{spec.job_id}.json")}), 60, "the three nodes to announce their metrics",
            logs=root / "fl")
        # network status lists them while they run
        status = subprocess.run([sys.executable, "-m", "fedfabric", "network", "--run-dir", str(root), "--config",
                                 str(cfg_path), "status"], capture_output=True, text=True, timeout=120)
        for o in ORGS:
            assert urls[o] in status.stdout.replace("\n", ""), status.stdout[-3000:]
        # scrape every node until the job completes (a node's endpoint goes away when it exits)
        end = time.monotonic() + 180
        while time.monotonic() < end and admin.get_job(spec.job_id)["status"] == "active":
            for o in ORGS:
                try:
                    scrapes[o].append(_scrape(urls[o]))
                except OSError:
                    pass
            time.sleep(0.2)
        job = admin.get_job(spec.job_id)
        assert job["status"] == "completed", job
        for o in ORGS:
            assert procs[o].wait(60) == 0, (root / "fl" / o / "node.log").read_text()[-3000:]
    finally:
        stop_nodes(procs)
    took = time.monotonic() - t0
    logs = {o: (root / "fl" / o / "node.log").read_text() for o in ORGS}
    assert job["rounds_finalized"] == ROUNDS and job["rounds_failed"] == 0, (job, logs["org1"][-3000:])
    # metrics: every node's counters moved with the rounds while it ran
    for o in ORGS:
        seen = scrapes[o]
        assert len(seen) >= 3, (o, len(seen))
        trained = [_get(s, "fedfabric_node_duty_seconds_count", duty="train") for s in seen]
        rounds = [_get(s, "fedfabric_node_round") for s in seen]
        sent = [_get(s, "fedfabric_node_sent_bytes_total", channel="submission") for s in seen]
        assert trained == sorted(trained) and trained[0] < trained[-1] <= ROUNDS, (o, trained)
        assert rounds[0] < rounds[-1] <= ROUNDS, (o, rounds)
        assert sent[-1] > sent[0] and sent[-1] % (spec.model.num_params * 4) == 0, (o, sent)
        last = seen[-1]
        assert _get(last, "fedfabric_node_transactions_total", function="submit_update", outcome="ok") >= 1
        received = (_get(last, "fedfabric_node_received_bytes_total", channel="exchange")
                    + _get(last, "fedfabric_node_received_bytes_total", channel="peer"))
        assert received > 0
        assert _get(last, "fedfabric_node_duty_seconds_sum", duty="train") > 0
        assert any(k[0] == "fedfabric_node_info" and dict(k[1])["org"] == o for k in last)
        assert f"metrics at {urls[o]}" in logs[o]
    assert list((root / "fl" / "metrics").glob(f"*.{spec.job_id}.json")) == []   # withdrawn on exit
    # the ledger: all three contributed to every version, with their clients' facts
    last_v = admin.get_version(spec.job_id, ROUNDS)
    assert [c["msp_id"] for c in last_v["contributors"]] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    assert all(a["approve"] and a["model_hash"] == last_v["model_hash"] for a in last_v["approvals"])
    report = admin.round_report(spec.job_id, ROUNDS)["participants"]
    for i, o in enumerate(ORGS):
        (X, y), _ = load_partition(i, 3, 0, 0.2)
        upd = report[msp_of[o]]["update"]
        assert upd["sample_count"] == len(y)
        assert upd["training"]["data_fingerprint"] == hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
        vec = ArtifactStore(root / "fl" / o / "artifacts").get_model(last_v["model_hash"])
        assert model_hash(vec) == last_v["model_hash"]
    assert last_v["model_hash"] == model_hash(in_process(spec, EXAMPLE)[1][-1])   # the same clients in-process
    assert [x["version"] for x in admin.lineage(spec.job_id, "latest")] == list(range(ROUNDS, -1, -1))
    from tests.chaincode_live.helpers import Party, invalid_transactions
    height = admin.contract.network.qscc().chain_info()["height"] - 1
    assert invalid_transactions(Party("org1", "Org1MSP", admin, admin), first_block, height) == []
    # no update payload in any log
    data = ArtifactStore(root / "fl" / "org1" / "artifacts").get(last_v["aggregate_hash"])
    for text in logs.values():
        assert data.hex()[:32] not in text
    print(f"\nflower job: {ROUNDS} secure rounds in {took:.1f}s including node start-up; "
          f"{len(scrapes['org2'])} scrapes of org2")
