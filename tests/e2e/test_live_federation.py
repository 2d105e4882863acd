"""End to end on the real network: three org processes train a secure job (protocol v2). org3's process
is SIGKILLed the moment its round-1 ballot (which registers its key for round 2) commits: it never
submits in round 2, and the survivors' seed reveals recover that round; org3 is started again and votes
in that same round. org2 is SIGKILLed after submitting its round-3 update and started again: it rejoins
round 3 (votes) and catches up. The final model verifies against the chain; no transaction of the job
was invalidated.

The job's quorum is 3/3 of stake, so a round can only finalize once the restarted org has voted: that
is what proves each restarted process rejoined the round it was killed in."""
from __future__ import annotations

import json
import os
import signal
import threading
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
       "privacy": "secure", "quorum": "3/3", "min_participants": 2, "participants": ["org1", "org2", "org3"],
       "windows": {"registration_s": 60, "submission_s": 8, "approval_s": 60}}


def _wait(pred, timeout: float, what: str, poll: float = 0.25, logs: Path | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    tails = "".join(f"\n--- {p.parent.name}\n" + "\n".join(p.read_text().splitlines()[-25:])
                    for p in sorted(logs.glob("*/node.log"))) if logs else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{tails}")


class Killer:
    """Watches the contract's events and SIGKILLs a node process the moment a trigger event commits."""

    def __init__(self, events, job_id: str, procs: dict) -> None:
        self.events, self.job_id, self.procs = events, job_id, procs
        self.triggers: dict[tuple[str, int, str], str] = {}    # (event, round, msp) -> org to kill
        self.killed: dict[str, float] = {}
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def kill_on(self, event: str, round_: int, msp: str, org: str) -> None:
        self.triggers[(event, round_, msp)] = org

    def _watch(self) -> None:
        for ev in self.events:
            body = json.loads(ev.payload)
            if body.get("job_id") != self.job_id:
                continue
            org = self.triggers.pop((ev.event_name, body.get("round"), body.get("msp_id")), None)
            if org is not None:
                os.kill(self.procs[org].pid, signal.SIGKILL)
                self.killed[org] = time.time()


def _records(root: Path, org: str, job_id: str) -> list[dict]:
    path = root / "fl" / org / f"{job_id}.log.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def fed(live_network, tmp_path_factory):
    net = live_network
    cfg_path = net.layout.root / "consortium.yaml"
    cfg_path.write_text(yaml.safe_dump(shift_ports(default_raw(), TEST_PORT_OFFSET)))
    gw, admin = open_client("org1", "Admin", config=net.config, run_root=net.layout.root)
    admin.wait_ready()
    init_consortium(admin, net.config)
    yield net, cfg_path, admin, gw
    gw.close()


def test_secure_job_with_a_killed_org_and_a_restart_mid_round(fed):
    net, cfg_path, admin, gw = fed
    root = net.layout.root
    rec = create_job(admin, parse_job(dict(JOB)), {o.name: o.msp_id for o in net.config.orgs})
    job_id = rec["job_id"]
    events = gw.get_network(net.config.channel).chaincode_events("fedfabric")
    procs: dict = {}
    killer = Killer(events, job_id, procs)
    killer.kill_on("Voted", 1, "Org3MSP", "org3")             # its key for round 2 is in; no round-2 update yet
    killer.kill_on("UpdateSubmitted", 3, "Org2MSP", "org2")    # mid-round: submitted, not yet voted
    t0 = time.monotonic()
    first_block = admin.contract.network.qscc().chain_info()["height"]
    procs.update(start_nodes(["org1", "org2", "org3"], job_id, root, cfg_path))
    try:
        # org3 is killed after voting in round 1; its peers recover round 2 from their seed reveals
        _wait(lambda: procs["org3"].poll() is not None, 90, "org3 to be killed after its round-1 ballot")
        assert procs["org3"].returncode == -signal.SIGKILL
        _wait(lambda: all(admin.round_report(job_id, 2)["participants"][m]["revealed_for"] == ["Org3MSP"]
                          for m in ("Org1MSP", "Org2MSP")) if admin.get_job(job_id)["current_round"] >= 2 else None,
              60, "the survivors to reveal their seeds for org3 in round 2", logs=root / "fl")
        assert admin.round_report(job_id, 2)["participants"]["Org3MSP"]["update"] is None
        # org3 starts again (same work dir) and, the quorum being all stake, round 2 waits for its vote
        restarted3 = time.time()
        procs.update(start_nodes(["org3"], job_id, root, cfg_path))
        # org2 is killed right after it submits in round 3, then started again
        _wait(lambda: "org2" in killer.killed and procs["org2"].poll() is not None, 120,
              "org2 to be killed after submitting in round 3", logs=root / "fl")
        assert procs["org2"].returncode == -signal.SIGKILL
        assert admin.get_round(job_id, 3).state.value == "collecting"   # mid-round
        restarted2 = time.time()
        procs.update(start_nodes(["org2"], job_id, root, cfg_path))
        job = _wait(lambda: (lambda j: j if j["status"] != "active" else None)(admin.get_job(job_id)), 120,
                    "the job to complete", logs=root / "fl")
        for org in ("org1", "org2", "org3"):
            assert procs[org].wait(30) == 0, f"{org} did not finish cleanly"
    finally:
        events.close()
        stop_nodes(procs)
    took = time.monotonic() - t0
    logs = {o: (root / "fl" / o / "node.log").read_text() for o in ("org1", "org2", "org3")}
    assert job["rounds_finalized"] == 3 and job["rounds_failed"] == 0, (job, logs["org1"][-2000:])
    v = {i: admin.get_version(job_id, i) for i in range(4)}
    assert [c["msp_id"] for c in v[1]["contributors"]] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    assert [c["msp_id"] for c in v[2]["contributors"]] == ["Org1MSP", "Org2MSP"]
    assert admin.get_round(job_id, 2).outcome["left_out"] == ["Org3MSP"]
    assert [c["msp_id"] for c in v[3]["contributors"]] == ["Org1MSP", "Org2MSP", "Org3MSP"], logs["org3"][-3000:]
    # each restarted process voted in the very round its predecessor was killed in
    for org, msp, r, since in (("org3", "Org3MSP", 2, restarted3), ("org2", "Org2MSP", 3, restarted2)):
        approvals = {a["msp_id"]: a for a in v[r]["approvals"]}
        assert approvals[msp]["approve"] and approvals[msp]["model_hash"] == v[r]["model_hash"]
        mine = [x for x in _records(root, org, job_id) if x["t"] >= since]
        assert any(x["what"] == "voted" and x.get("round") == r for x in mine), (org, mine)
    assert [x["version"] for x in admin.lineage(job_id, "latest")] == [3, 2, 1, 0]
    # no transaction of the job was invalidated (disjoint keys, point reads, one closer per round)
    from tests.chaincode_live.helpers import Party, invalid_transactions
    last = admin.contract.network.qscc().chain_info()["height"] - 1
    party = Party("org1", "Org1MSP", admin, admin)
    assert invalid_transactions(party, first_block, last) == []
    # every org's store holds the final model, and its bytes hash to the ledger's record
    for org in ("org1", "org2", "org3"):
        vec = ArtifactStore(root / "fl" / org / "artifacts").get_model(v[3]["model_hash"])
        assert model_hash(vec) == v[3]["model_hash"] and np.all(np.isfinite(vec))
    # the secure aggregate of round 3 applied to version 2 gives version 3, bit for bit
    data = ArtifactStore(root / "fl" / "org2" / "artifacts").get(v[3]["aggregate_hash"])   # kept by every node
    from fedfabric.fl.recipe import Recipe
    from fedfabric_protocol import codec
    base = ArtifactStore(root / "fl" / "org1" / "artifacts").get_model(v[2]["model_hash"])
    assert model_hash(Recipe.candidate(base, codec.unpack(data))) == v[3]["model_hash"]
    # secrets and payloads stay out of the logs
    for text in logs.values():
        assert data.hex()[:32] not in text
    for org in ("org1", "org2", "org3"):
        keys = list((root / "fl" / org / "keys" / job_id).iterdir())
        assert keys and all(k.stat().st_mode & 0o077 == 0 for k in keys)
        for k in keys:
            assert k.read_bytes().hex() not in logs[org]
    assert took < 200, f"the federation took {took:.0f}s"


def test_export_verify_and_report_on_the_live_ledger(fed, tmp_path):
    """`model export` then `audit verify` accept the final model; a tampered copy is refused; the report renders."""
    import torch
    from typer.testing import CliRunner

    from fedfabric.cli import app

    net, cfg_path, admin, _ = fed
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
