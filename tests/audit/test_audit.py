"""fedfabric.audit against the real contract on the in-memory stub: lineage, summaries, verify, report."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fedfabric import audit
from fedfabric.artifacts import ArtifactStore, export_model, model_hash
from fedfabric.audit import AuditError, BadInput

from .ledger import ARCH, ARCH_KW, JOB, build_world


def _export(world, path, ledger_version, **over):
    """A model file for ``version`` written the way ``model export`` does (lineage from the ledger)."""
    kw = dict(job_id=JOB, version=ledger_version, arch_id=ARCH, arch_kwargs=ARCH_KW,
              lineage=audit.lineage(world.client, JOB, str(ledger_version)))
    kw.update(over)
    export_model(path, world.vectors[ledger_version], **kw)
    return path


def _rewrite(path, change):
    doc = torch.load(path, map_location="cpu", weights_only=True)
    change(doc)
    torch.save(doc, path)


# ---- lineage
def test_lineage_walks_from_latest_to_version_0_with_hashes_txs_and_blocks(shared):
    chain = audit.lineage(shared.client, JOB)
    assert [x["version"] for x in chain] == [2, 1, 0]
    assert [x["model_hash"] for x in chain] == [model_hash(shared.vectors[v]) for v in (2, 1, 0)]
    assert chain[0]["parent_hash"] == chain[1]["model_hash"] and chain[1]["parent_hash"] == chain[2]["model_hash"]
    assert chain[2]["status"] == "initial" and chain[2]["parent_hash"] is None
    assert [(x["approved_stake"], x["total_stake"]) for x in chain[:2]] == [(200, 300), (300, 300)]
    assert all(len(x["tx_id"]) == 64 and isinstance(x["block"], int) for x in chain)
    assert chain[0]["block"] > chain[1]["block"] > chain[2]["block"]
    assert [c["msp_id"] for c in chain[1]["contributors"]] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    # the contract's own lineage agrees
    assert [(x["version"], x["model_hash"], x["finalize_tx"]) for x in shared.client.lineage(JOB, "latest")] == \
        [(x["version"], x["model_hash"], x["tx_id"]) for x in chain]
    assert [x["version"] for x in audit.lineage(shared.client, JOB, 1)] == [1, 0]
    assert [x["version"] for x in audit.lineage(shared.client, JOB, "0")] == [0]


def test_lineage_bad_input(shared):
    with pytest.raises(BadInput, match="job nope not found"):
        audit.lineage(shared.client, "nope")
    with pytest.raises(BadInput, match="no version or alias 'staging'"):
        audit.lineage(shared.client, JOB, "staging")
    with pytest.raises(BadInput, match="version 7 of job job1 not found"):
        audit.lineage(shared.client, JOB, 7)


def test_lineage_detects_a_parent_whose_hash_was_changed(world):
    world.put_version(1, model_hash="0" * 64)
    with pytest.raises(AuditError, match=r"version 2 says its parent \(version 1\) has model hash 3?.*but version 1 "
                                         r"records 000000000000"):
        audit.lineage(world.client, JOB)
    # from version 1 itself: the link to 0 holds, but nobody approved the hash it now carries
    with pytest.raises(AuditError, match=r"only 0 of 300 stake approved its model hash 000000000000"):
        audit.lineage(world.client, JOB, 1)


def test_lineage_detects_a_replaced_root_and_a_wrong_parent(world):
    forged = "f" * 64
    world.put_version(0, model_hash=forged)
    world.put_version(1, parent_hash=forged)
    with pytest.raises(AuditError, match=r"version 0 has model hash ffffffffffff…, but the job spec's initial_hash"):
        audit.lineage(world.client, JOB)

    w2 = build_world(world.store.root.parent / "w2")
    w2.put_version(2, parents=[0])
    with pytest.raises(AuditError, match="version 2 names version 0 as its parent, expected version 1"):
        audit.lineage(w2.client, JOB)


def test_lineage_detects_a_version_its_round_does_not_know(world):
    world.put_version(2, round=3)
    with pytest.raises(AuditError, match="version 2 of job job1 says it came from round 3, but that round is failed"):
        audit.lineage(world.client, JOB)


# ---- summaries
def test_round_summary_finalized_and_failed(shared):
    s = audit.round_summary(shared.client, JOB, 2)
    assert (s["state"], s["version"], s["base_version"]) == ("finalized", 2, 1)
    assert s["model_hash"] == model_hash(shared.vectors[2])
    rows = {p["msp_id"]: p for p in s["participants"]}
    assert {m: (r["sample_count"], r["vote"]) for m, r in rows.items()} == \
        {"Org1MSP": (100, "approve"), "Org2MSP": (300, "approve"), "Org3MSP": (50, "reject")}
    assert all(len(r["update_hash"]) == 64 for r in rows.values())
    assert s["rewards"] == {"Org1MSP": 222, "Org2MSP": 667, "Org3MSP": 111} and s["slashed"] == {}
    assert s["metrics"]["val_accuracy"]["per_org"] == {"Org1MSP": 0.9, "Org2MSP": 0.91, "Org3MSP": 0.92}
    assert s["metrics"]["val_accuracy"]["weighted"] == pytest.approx(0.91)
    assert s["metrics"]["val_loss"]["weighted"] == pytest.approx(0.501)
    assert list(s["tx_ids"]) == ["open", "registration", "collecting", "aggregated", "finalized"]
    assert all(isinstance(b, int) for b in s["blocks"].values())

    f = audit.round_summary(shared.client, JOB, 3)
    assert f["state"] == "failed" and "only 1 updates submitted" in f["reason"] and f["version"] is None
    assert f["rewards"] == {} and f["slashed"] == {"Org2MSP": 10, "Org3MSP": 10}
    assert [p["msp_id"] for p in f["participants"] if p["submitted"]] == ["Org1MSP"]
    with pytest.raises(BadInput, match="round 9 of job job1 not found"):
        audit.round_summary(shared.client, JOB, 9)


def test_org_summary_participation_rewards_slashes_history(shared):
    for name in ("org2", "Org2MSP", "ORG2"):
        s = audit.org_summary(shared.client, name)
        assert s["msp_id"] == "Org2MSP"
    assert (s["stake"], s["balance"], s["rewards"], s["slashed"]) == (90, 1334, 1334, 10)
    assert [(r["round"], r["submitted"], r["voted"], r["reward"], r["slash"]) for r in s["rounds"]] == \
        [(1, True, True, 667, 0), (2, True, True, 667, 0), (3, False, False, 0, 10)]
    assert [b[2] for b in s["balance_history"]] == [0, 667, 1334]
    assert [b[2] for b in s["stake_history"]] == [100, 90]
    with pytest.raises(BadInput, match="no member org 'org9'.*Org1MSP, Org2MSP, Org3MSP"):
        audit.org_summary(shared.client, "org9")


def test_metric_scaling_is_generic():
    assert audit.scale_metric("val_accuracy_milli", 951) == ("val_accuracy", pytest.approx(0.951))
    assert audit.scale_metric("val_loss_micro", 250_000) == ("val_loss", pytest.approx(0.25))
    assert audit.scale_metric("val_loss_micro", -1) == ("val_loss", None)   # the nodes' "non-finite" marker
    assert audit.scale_metric("val_samples", 40) == ("val_samples", 40)
    c = audit.combine_metrics({"A": {"acc_milli": 900}, "B": {"acc_milli": 600}}, {"A": 300, "B": 100})
    assert c["acc"]["mean"] == pytest.approx(0.75) and c["acc"]["weighted"] == pytest.approx(0.825)


# ---- verify and export
def test_verify_accepts_an_exported_finalized_version(shared, tmp_path):
    res = audit.export_version(shared.client, JOB, "latest", tmp_path / "m.pt", shared.store)
    assert res.ok and res.version == 2 and res.status == "finalized"
    again = audit.verify(shared.client, tmp_path / "m.pt", shared.store)
    assert again.ok, again.problems
    assert [c.name for c in again.checks] == ["file hash", "state dict", "job", "on ledger", "status", "lineage",
                                              "embedded lineage", "architecture", "store"]
    assert [x["version"] for x in again.lineage] == [2, 1, 0]
    doc = torch.load(tmp_path / "m.pt", weights_only=True)
    assert doc["model_hash"] == model_hash(shared.vectors[2]) and doc["version"] == 2
    assert np.array_equal(doc["vector"].numpy(), shared.vectors[2])
    one = audit.verify(shared.client, _export(shared, tmp_path / "v1.pt", 1))
    assert one.ok and one.version == 1 and "verified" in one.summary()
    assert json.loads(json.dumps(one.to_dict()))["ok"] is True


def test_verify_rejects_a_changed_parameter_naming_the_mismatch(shared, tmp_path):
    path = _export(shared, tmp_path / "m.pt", 2)

    def bump(doc):
        doc["vector"][3] += 1e-3
        doc["state_dict"]["0.weight"].view(-1)[3] += 1e-3
    _rewrite(path, bump)
    res = audit.verify(shared.client, path)
    assert not res.ok
    tampered = model_hash(torch.load(path, weights_only=True)["vector"].numpy())
    assert res.computed_hash == tampered != res.claimed_hash
    text = " | ".join(res.problems)
    assert f"the parameters were changed: they hash to {tampered[:16]}" in text
    assert f"no version of job job1 has model hash {tampered[:16]}" in text
    assert f"the ledger's version 2 has model hash {model_hash(shared.vectors[2])[:16]}" in text
    assert "FAILED" in res.summary()


def test_verify_rejects_a_file_whose_hash_label_was_forged_too(shared, tmp_path):
    path = _export(shared, tmp_path / "m.pt", 2)

    def forge(doc):
        doc["vector"][0] = 42.0
        doc["state_dict"]["0.weight"].view(-1)[0] = 42.0
        doc["model_hash"] = model_hash(doc["vector"].numpy())
    _rewrite(path, forge)
    res = audit.verify(shared.client, path)
    assert not res.ok and [c.name for c in res.checks if not c.ok] == ["on ledger"]


def test_verify_requires_state_dict_and_vector_to_agree(shared, tmp_path):
    path = _export(shared, tmp_path / "m.pt", 2)
    _rewrite(path, lambda doc: doc["state_dict"]["0.bias"].add_(0.5))
    res = audit.verify(shared.client, path)
    assert not res.ok and [c.name for c in res.checks if not c.ok] == ["state dict"]
    assert "state dict tensor '0.bias' element 0" in res.problems[0] and "parameter 6" in res.problems[0]


def test_verify_names_a_wrong_version_label_and_an_unknown_job(shared, tmp_path):
    res = audit.verify(shared.client, _export(shared, tmp_path / "a.pt", 2, version=1))
    assert not res.ok and res.version == 2
    assert "the file says version 1, but these parameters are version 2 on the ledger" in res.problems
    res = audit.verify(shared.client, _export(shared, tmp_path / "b.pt", 2, job_id="other-job"))
    assert not res.ok and "the file claims job 'other-job', which the ledger does not know" in res.problems[0]


def test_verify_requires_finalized_and_intact_lineage(world, tmp_path):
    path = _export(world, tmp_path / "m.pt", 2)
    world.put_version(2, status="revoked")
    res = audit.verify(world.client, path)
    assert "version 2 is 'revoked', not finalized" in res.problems
    world.put_version(2, status="finalized", parent_hash="1" * 64)
    res = audit.verify(world.client, path)
    assert not res.ok and any("broken lineage" in p for p in res.problems)


def test_verify_refuses_missing_and_non_model_files(shared, tmp_path):
    with pytest.raises(BadInput, match="nothing.pt: no such file"):
        audit.verify(shared.client, tmp_path / "nothing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a model\x00" * 10)
    with pytest.raises(BadInput, match="junk.pt: not a readable model file"):
        audit.verify(shared.client, junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(BadInput, match="other.pt: not a fedfabric model file"):
        audit.verify(shared.client, other)
    odd = tmp_path / "odd.pt"
    torch.save({"format": "fedfabric-model/1", "job_id": JOB, "version": 2, "model_hash": "0" * 64, "arch_id": ARCH,
                "lineage": [], "vector": [1.0, 2.0], "state_dict": {}}, odd)
    with pytest.raises(BadInput, match="odd.pt: malformed fedfabric model file"):
        audit.verify(shared.client, odd)


def test_export_checks_the_store_against_the_ledger(shared, tmp_path):
    with pytest.raises(BadInput, match="has no parameters for version 2 of job job1"):
        audit.export_version(shared.client, JOB, "2", tmp_path / "m.pt", ArtifactStore(tmp_path / "empty"))
    bad = ArtifactStore(tmp_path / "bad")
    digest = model_hash(shared.vectors[1])
    bad.path(digest).parent.mkdir(parents=True)
    bad.path(digest).write_bytes(np.zeros(8, "<f4").tobytes())   # wrong bytes under the right name
    with pytest.raises(AuditError, match="is corrupted"):
        audit.export_version(shared.client, JOB, "1", tmp_path / "m.pt", bad)
    assert not (tmp_path / "m.pt").exists()
    arch, kw = audit.model_architecture(shared.client.get_job(JOB))
    assert (arch, kw) == (ARCH, ARCH_KW)


# ---- report
def test_report_writes_html_png_and_json(shared, tmp_path):
    out = tmp_path / "report"
    files = audit.report(shared.client, JOB, out, store=shared.store,
                         baseline={"centralized_accuracy": 0.97, "federated_accuracy": 0.91})
    assert files.html == out / "report.html" and files.json == out / "report.json"
    assert sorted(p.name for p in files.images) == ["accuracy.png", "loss.png", "payouts.png"]
    for p in files.images:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(files.json.read_text())
    assert data["format"] == "fedfabric-audit-report/1" and data["summary"]["lineage_ok"] is True
    assert [(r["round"], r["state"]) for r in data["rounds"]] == [(1, "finalized"), (2, "finalized"), (3, "failed")]
    assert [c["round"] for c in data["curves"]] == [1, 2]
    assert [round(c["metrics"]["val_accuracy"]["weighted"], 3) for c in data["curves"]] == [0.81, 0.91]
    assert [x["version"] for x in data["lineage"]] == [2, 1, 0]
    assert {x["artifact"] for x in data["lineage"]} == {"verified"}
    assert data["payouts"][2] == {"round": 3, "state": "failed", "rewards": {}, "slashed": {"Org2MSP": 10, "Org3MSP": 10}}
    assert data["totals"]["Org2MSP"] == {"rewards": 1334, "slashed": 10}
    assert data["spec"]["job_id"] == JOB and data["baseline"]["centralized_accuracy"] == 0.97
    html = files.html.read_text()
    assert html.count("data:image/png;base64,") == 3   # self-contained
    for needle in ("Round 1 — finalized", "Round 3 — failed", "only 1 updates submitted", "Contributors",
                   data["lineage"][0]["tx_id"], data["lineage"][0]["model_hash"], "centralized_accuracy",
                   "Job specification", "intact"):
        assert needle in html, needle


def test_report_shows_a_broken_lineage_instead_of_failing(world, tmp_path):
    world.put_version(1, model_hash="0" * 64)
    files = audit.report(world.client, JOB, tmp_path / "r")
    data = json.loads(files.json.read_text())
    assert data["summary"]["lineage_ok"] is False and "broken lineage" in data["summary"]["lineage_error"]
    assert "BROKEN" in files.html.read_text()
    with pytest.raises(BadInput, match="job nope not found"):
        audit.report(world.client, "nope", tmp_path / "r2")
