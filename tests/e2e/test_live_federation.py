"""End to end on the real network: three org processes train a secure job; one crashes mid-round
and is recovered by seed reveals, then restarts and rejoins; the final model verifies against the chain."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from fedfabric.artifacts import ArtifactStore, model_hash
from fedfabric.client import open_client
from fedfabric.node.bootstrap import create_job, init_consortium
from fedfabric.node.demo import start_nodes, stop_nodes
from fedfabric.node.jobfile import parse_job

from tests.conftest import TEST_PORT_OFFSET, default_raw, shift_ports

pytestmark = pytest.mark.live

JOB = {"job_id": "e2e-secure", "dataset": "breast_cancer", "model": {"arch": "logreg"}, "rounds": 3,
       "partition": {"kind": "dirichlet", "alpha": 0.5}, "training": {"epochs": 2, "lr": 0.01},
       "privacy": "secure", "quorum": "2/3", "min_participants": 2, "participants": ["org1", "org2", "org3"],
       "windows": {"registration_s": 60, "submission_s": 8, "approval_s": 60}}


def _wait(pred, timeout: float, what: str, poll: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def fed(live_network, tmp_path_factory):
    net = live_network
    cfg_path = net.layout.root / "consortium.yaml"
    cfg_path.write_text(yaml.safe_dump(shift_ports(default_raw(), TEST_PORT_OFFSET)))
    gw, admin = open_client("org1", "Admin", config=net.config, run_root=net.layout.root)
    admin.wait_ready()
    init_consortium(admin, net.config)
    yield net, cfg_path, admin
    gw.close()


def test_secure_job_with_crash_recovery_and_restart(fed):
    net, cfg_path, admin = fed
    root = net.layout.root
    rec = create_job(admin, parse_job(dict(JOB)), {o.name: o.msp_id for o in net.config.orgs})
    job_id = rec["job_id"]
    procs = start_nodes(["org1", "org2"], job_id, root, cfg_path)
    # org3 crashes as soon as round 2 starts collecting: it registered a key but never submits
    procs.update(start_nodes(["org3"], job_id, root, cfg_path, extra={"org3": ["--crash-in-round", "2"]}))
    try:
        _wait(lambda: procs["org3"].poll() is not None, 120, "org3 to crash in round 2")
        assert procs["org3"].returncode == 3
        r2 = _wait(lambda: (lambda r: r if r["state"] in ("finalized", "failed") else None)(
            admin.get_round(job_id, 2)), 120, "round 2 to close without org3")
        assert r2["state"] == "finalized", r2.get("reason")
        assert r2["dropped"] == ["Org3MSP"]
        report = admin.round_report(job_id, 2)
        assert report["participants"]["Org1MSP"]["revealed_for"] == ["Org3MSP"]
        assert report["participants"]["Org2MSP"]["revealed_for"] == ["Org3MSP"]
        # org3 restarts (same work dir) and rejoins at the current round
        procs.update(start_nodes(["org3"], job_id, root, cfg_path))
        job = _wait(lambda: (lambda j: j if j["status"] != "active" else None)(admin.get_job(job_id)), 180,
                    "the job to complete")
    finally:
        stop_nodes(procs)
    logs = {o: (root / "fl" / o / "node.log").read_text() for o in ("org1", "org2", "org3")}
    assert job["rounds_finalized"] == 3, (job, logs["org1"][-2000:])
    v = {i: admin.get_version(job_id, i) for i in range(4)}
    assert [c["msp_id"] for c in v[1]["contributors"]] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    assert [c["msp_id"] for c in v[2]["contributors"]] == ["Org1MSP", "Org2MSP"]
    assert [c["msp_id"] for c in v[3]["contributors"]] == ["Org1MSP", "Org2MSP", "Org3MSP"], logs["org3"][-3000:]
    assert [x["version"] for x in admin.lineage(job_id, "latest")] == [3, 2, 1, 0]
    # every org's store holds the final model, and its bytes hash to the ledger's record
    for org in ("org1", "org2", "org3"):
        vec = ArtifactStore(root / "fl" / org / "artifacts").get_model(v[3]["model_hash"])
        assert model_hash(vec) == v[3]["model_hash"] and np.all(np.isfinite(vec))
    # the secure aggregate of round 3 applied to version 2 gives version 3, bit for bit
    _, data = admin.get_aggregate(job_id, 3)
    from fedfabric.fl import fixedpoint
    base = ArtifactStore(root / "fl" / "org1" / "artifacts").get_model(v[2]["model_hash"])
    delta = fixedpoint.decode(np.frombuffer(data, "<u4").astype(np.uint32))
    assert model_hash((base.astype(np.float64) + delta).astype(np.float32)) == v[3]["model_hash"]
    # secrets and payloads stay out of the logs
    for text in logs.values():
        assert data.hex()[:32] not in text
    keys = list((root / "fl" / "org1" / "keys" / job_id).iterdir())
    assert keys and all(k.stat().st_mode & 0o077 == 0 for k in keys)
    for k in keys:
        assert k.read_bytes().hex() not in logs["org1"]


def test_export_verify_and_report_on_the_live_ledger(fed, tmp_path):
    """`model export` then `audit verify` accept the final model; a tampered copy is refused; the report renders."""
    import torch
    from typer.testing import CliRunner

    from fedfabric.cli import app

    net, cfg_path, admin = fed
    jobs = [j["job_id"] for j in admin.list_jobs()["jobs"] if j["status"] == "completed"]
    assert "e2e-secure" in jobs, "run after the federation test (same module)"
    common = ["--run-dir", str(net.layout.root), "--config", str(cfg_path)]
    runner = CliRunner()
    out = tmp_path / "final.pt"
    res = runner.invoke(app, ["model", "export", "e2e-secure", "latest", "--out", str(out), *common])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["audit", "verify", str(out), *common])
    assert res.exit_code == 0, res.output
    assert "e2e-secure" in res.output
    doc = torch.load(out, weights_only=True)
    doc["vector"][0] += 1e-3
    first = next(iter(doc["state_dict"]))
    doc["state_dict"][first].view(-1)[0] += 1e-3
    bad = tmp_path / "tampered.pt"
    torch.save(doc, bad)
    res = runner.invoke(app, ["audit", "verify", str(bad), *common])
    assert res.exit_code == 1, res.output
    res = runner.invoke(app, ["audit", "verify", str(tmp_path / "missing.pt"), *common])
    assert res.exit_code == 2, res.output
    res = runner.invoke(app, ["audit", "report", "e2e-secure", "--out", str(tmp_path / "report"), *common])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report" / "report.html").read_text()
    assert "e2e-secure" in html and "data:image/png;base64" in html
    res = runner.invoke(app, ["audit", "lineage", "e2e-secure", "--json", *common])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["audit", "chain", "--json", *common])   # every peer's hash chain, and agreement
    assert res.exit_code == 0, res.output
    assert res.output.count('"ok": true') >= 4
