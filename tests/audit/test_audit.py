"""fedfabric.audit on real v2 rounds played by OrgNodes on the memory ledger: lineage, summaries, verify, report."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fedfabric import audit
from fedfabric.artifacts import ArtifactStore, export_model, model_hash
from fedfabric.audit import AuditError, BadInput
from fedfabric.audit.lineage import version_result
from fedfabric.node.bootstrap import create_job
from fedfabric.node.jobfile import parse_job
from fedfabric_cc.incentives import split

from tests.chaincode.harness import ORGS
from tests.node.memledger import MemClient

from .ledger import ARCH, ARCH_KW, JOB, JOB_DOC, MSP_OF, build_world


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


def _samples(world, r):
    return {m: p["update"]["sample_count"] for m, p in world.client.round_report(JOB, r)["participants"].items()
            if p["update"]}


# ---- lineage
def test_lineage_walks_from_latest_to_version_0_with_hashes_txs_and_blocks(shared):
    chain = audit.lineage(shared.client, JOB)
    assert [x["version"] for x in chain] == [2, 1, 0]
    assert [x["model_hash"] for x in chain] == [model_hash(shared.vectors[v]) for v in (2, 1, 0)]
    assert chain[0]["parent_hash"] == chain[1]["model_hash"] and chain[1]["parent_hash"] == chain[2]["model_hash"]
    assert chain[2]["status"] == "initial" and chain[2]["parent_hash"] is None
    # round 2 finalized without Org3 (its node was down): 200 of 300 stake approved, quorum 2/3
    assert [(x["approved_stake"], x["total_stake"], x["quorum"]) for x in chain[:2]] == [(200, 300, [2, 3]),
                                                                                          (300, 300, [2, 3])]
    assert all(len(x["tx_id"]) == 64 and isinstance(x["block"], int) for x in chain)
    assert chain[0]["block"] > chain[1]["block"] > chain[2]["block"]
    assert [c["msp_id"] for c in chain[1]["contributors"]] == ORGS
    assert [c["msp_id"] for c in chain[0]["contributors"]] == ORGS[:2]
    assert (chain[0]["rule"], chain[0]["privacy"], chain[0]["exchange"]) == ("fedavg", "secure", "endorsed")
    # the contract's own lineage agrees
    assert [(x["version"], x["model_hash"], x["finalize_tx"]) for x in shared.client.lineage(JOB, "latest")] == \
        [(x["version"], x["model_hash"], x["tx_id"]) for x in chain]
    assert [x["version"] for x in audit.lineage(shared.client, JOB, 1)] == [1, 0]
    assert [x["version"] for x in audit.lineage(shared.client, JOB, "0")] == [0]


def test_a_versions_result_is_what_its_approvers_voted_for(shared):
    v2 = shared.client.get_version(JOB, 2)
    key = version_result(v2).key
    assert v2["tally"]["winner"] == key
    assert {a["msp_id"] for a in v2["approvals"] if a["result_key"] == key} == {"Org1MSP", "Org2MSP"}


def test_lineage_bad_input(shared):
    with pytest.raises(BadInput, match="job nope not found"):
        audit.lineage(shared.client, "nope")
    with pytest.raises(BadInput, match="no version or alias 'staging'"):
        audit.lineage(shared.client, JOB, "staging")
    with pytest.raises(BadInput, match="version 7 of job job1 not found"):
        audit.lineage(shared.client, JOB, 7)


def test_lineage_detects_a_parent_whose_hash_was_changed(world):
    world.put_version(1, model_hash="0" * 64)
    with pytest.raises(AuditError, match=r"version 2 says its parent \(version 1\) has model hash .*but version 1 "
                                         r"records 000000000000"):
        audit.lineage(world.client, JOB)
    # from version 1 itself: the link to 0 holds, but no ballot approved the result it now claims
    with pytest.raises(AuditError, match=r"only 0 of 300 stake approved its result \(model hash 000000000000"):
        audit.lineage(world.client, JOB, 1)


@pytest.mark.parametrize("change", [{"aggregate_hash": "a" * 64}, {"flagged": ["Org1MSP"]},
                                    {"contributors": [{"msp_id": "Org1MSP", "sample_count": 1, "update_hash": "b" * 64,
                                                       "tx_id": "c" * 64}]}])
def test_lineage_detects_a_result_nobody_voted_for(world, change):
    world.put_version(2, **change)
    with pytest.raises(AuditError, match="version 2 of job job1 is recorded as finalized, but only 0 of 300 stake"):
        audit.lineage(world.client, JOB)


def test_lineage_detects_a_replaced_root_and_a_wrong_parent(world, tmp_path):
    forged = "f" * 64
    world.put_version(0, model_hash=forged)
    world.put_version(1, parent_hash=forged)
    with pytest.raises(AuditError, match=r"version 0 has model hash ffffffffffff…, but the job spec's initial_hash"):
        audit.lineage(world.client, JOB)

    w2 = build_world(tmp_path / "w2")
    w2.put_version(2, parents=[0])
    with pytest.raises(AuditError, match="version 2 names version 0 as its parent, expected version 1"):
        audit.lineage(w2.client, JOB)


def test_lineage_detects_a_version_its_round_does_not_know(world):
    world.put_version(2, round=3)
    with pytest.raises(AuditError, match="version 2 of job job1 says it came from round 3, but that round is failed "
                                         "with version None"):
        audit.lineage(world.client, JOB)


# ---- summaries
def test_round_summary_of_a_round_with_an_org_left_out(shared):
    s = audit.round_summary(shared.client, JOB, 2)
    assert (s["state"], s["phase"], s["closed"], s["version"], s["base_version"]) == ("finalized", "closed", True, 2, 1)
    assert s["model_hash"] == model_hash(shared.vectors[2]) == shared.client.get_version(JOB, 2)["model_hash"]
    assert (s["left_out"], s["submitted"], s["voted"]) == (["Org3MSP"], ORGS[:2], ORGS[:2])
    rows = {p["msp_id"]: p for p in s["participants"]}
    assert {m: (r["participant"], r["submitted"], r["left_out"], r["vote"]) for m, r in rows.items()} == {
        "Org1MSP": (True, True, False, "approve"), "Org2MSP": (True, True, False, "approve"),
        "Org3MSP": (True, False, True, None)}
    assert rows["Org1MSP"]["revealed_for"] == rows["Org2MSP"]["revealed_for"] == ["Org3MSP"]
    assert [c["msp_id"] for c in s["contributors"]] == ORGS[:2]
    assert all(len(c["update_hash"]) == 64 and c["update_tx"] for c in s["contributors"])
    samples = _samples(shared, 2)
    assert s["rewards"] == split(1000, samples) and s["slashed"] == {"Org3MSP": 10}
    assert {m: (r["reward"], r["slashed"]) for m, r in rows.items()} == {
        m: (s["rewards"].get(m, 0), s["slashed"].get(m, 0)) for m in ORGS}
    assert s["aggregate"]["recomputed"] is True and s["aggregate"]["rule"] == {"rule": "fedavg"}
    key = version_result(shared.client.get_version(JOB, 2)).key
    assert s["tally"]["approve_by_result"] == {key: 200} and rows["Org1MSP"]["vote_result_key"] == key
    acc = s["metrics"]["val_accuracy"]
    assert set(acc["per_org"]) == {"Org1MSP", "Org2MSP"}
    assert acc["weighted"] == pytest.approx(acc["mean"])          # equal stakes
    assert s["update_metrics"]["train_loss"]["per_org"].keys() == {"Org1MSP", "Org2MSP"}


def test_round_timeline_runs_from_open_to_finalize_with_blocks(shared):
    r1, r2 = (audit.round_summary(shared.client, JOB, r) for r in (1, 2))
    assert [(t["step"], t["msp_id"]) for t in r2["timeline"]] == [
        ("opened", None), ("started", None), ("updates", "Org1MSP"), ("updates", "Org2MSP"), ("reveals", "Org1MSP"),
        ("reveals", "Org2MSP"), ("votes", "Org1MSP"), ("votes", "Org2MSP"), ("finalize", r2["closed_by"])]
    blocks = [t["block"] for t in r2["timeline"]]
    assert all(isinstance(b, int) for b in blocks) and blocks == sorted(blocks)
    # round 2 opened, already collecting, in the transaction that finalized round 1
    assert r2["timeline"][0]["tx_id"] == r2["timeline"][1]["tx_id"] == r1["timeline"][-1]["tx_id"]
    assert r1["timeline"][-1]["tx_id"] == shared.client.get_version(JOB, 1)["tx_ids"]["finalize"]
    steps = [t["step"] for t in r1["timeline"]]
    assert steps == ["opened", "started", *["updates"] * 3, *["votes"] * 3, "finalize"]
    assert r1["timeline"][1]["tx_id"] != r1["timeline"][0]["tx_id"]   # round 1 registered, then started


def test_round_summary_of_a_failed_round(shared):
    f = audit.round_summary(shared.client, JOB, 3)
    assert (f["state"], f["version"], f["model_hash"], f["aggregate"]) == ("failed", None, None, None)
    assert f["reason"] == "only 1 updates submitted, 2 required"
    assert f["rewards"] == {} and f["slashed"] == {"Org2MSP": 10}
    rows = {p["msp_id"]: p for p in f["participants"]}
    assert [m for m, p in rows.items() if p["participant"]] == ORGS[:2]   # Org3 sent no key in a round-2 ballot
    assert [m for m, p in rows.items() if p["submitted"]] == ["Org1MSP"]
    assert not any(p["vote"] for p in rows.values())       # one update cannot make a version: closed unvoted
    assert [t["step"] for t in f["timeline"]] == ["opened", "started", "updates", "finalize"]
    with pytest.raises(BadInput, match="round 9 of job job1 not found"):
        audit.round_summary(shared.client, JOB, 9)


def test_round_summary_of_an_open_round_names_its_phase(world):
    admin = MemClient(world.ledger, ORGS[0], "admin")
    create_job(admin, parse_job({**JOB_DOC, "job_id": "job2"}), MSP_OF)
    MemClient(world.ledger, ORGS[1]).register("job2", 1, bytes(range(32)))
    s = audit.round_summary(world.client, "job2", 1)
    assert (s["state"], s["phase"], s["closed"], s["version"]) == ("registration", "registering", False, None)
    assert [p["msp_id"] for p in s["participants"] if p["registered"]] == ["Org2MSP"]
    assert [t["step"] for t in s["timeline"]] == ["opened"] and s["tally"] is None


def test_org_summary_participation_rewards_slashes_history(shared):
    reward = {r: split(1000, _samples(shared, r)) for r in (1, 2)}
    for name in ("org2", "Org2MSP", "ORG2"):
        s = audit.org_summary(shared.client, name)
        assert s["msp_id"] == "Org2MSP"
    earned = reward[1]["Org2MSP"] + reward[2]["Org2MSP"]
    assert (s["stake"], s["balance"], s["rewards"], s["slashed"]) == (90, earned, earned, 10)
    assert [(r["round"], r["submitted"], r["voted"], r["reward"], r["slash"]) for r in s["rounds"]] == \
        [(1, True, True, reward[1]["Org2MSP"], 0), (2, True, True, reward[2]["Org2MSP"], 0), (3, False, False, 0, 10)]
    assert [b[2] for b in s["balance_history"]] == [0, reward[1]["Org2MSP"], earned]
    assert [b[2] for b in s["stake_history"]] == [100, 90]
    org3 = audit.org_summary(shared.client, "org3")
    assert [(r["round"], r["submitted"], r["voted"], r["slash"]) for r in org3["rounds"]] == \
        [(1, True, True, 0), (2, False, False, 10)]
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
    assert "state dict tensor '0.bias' element 0" in res.problems[0] and "parameter 60" in res.problems[0]


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
    # the spec names only the architecture; its input size and classes come from the data set, as on the nodes
    assert audit.model_architecture(shared.client.get_job(JOB)) == (ARCH, ARCH_KW)


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
    for c, v in zip(data["curves"], (1, 2)):
        per_org = shared.client.get_version(JOB, v)["metrics"]
        mean = sum(m["val_accuracy_milli"] for m in per_org.values()) / len(per_org) / 1000
        assert c["metrics"]["val_accuracy"]["weighted"] == pytest.approx(mean)   # equal stakes
    assert [x["version"] for x in data["lineage"]] == [2, 1, 0]
    assert {x["artifact"] for x in data["lineage"]} == {"verified"}
    assert data["payouts"][2] == {"round": 3, "state": "failed", "rewards": {}, "slashed": {"Org2MSP": 10}}
    earned = sum(split(1000, _samples(shared, r))["Org2MSP"] for r in (1, 2))
    assert data["totals"]["Org2MSP"] == {"rewards": earned, "slashed": 10}
    assert data["totals"]["Org3MSP"]["slashed"] == 10
    assert data["spec"]["job_id"] == JOB and data["baseline"]["centralized_accuracy"] == 0.97
    html = files.html.read_text()
    assert html.count("data:image/png;base64,") == 3   # self-contained
    for needle in ("Round 1 — finalized", "Round 3 — failed", "only 1 updates submitted", "Contributors",
                   "left out", "finalize", "recomputed by the endorsers", data["lineage"][0]["tx_id"],
                   data["lineage"][0]["model_hash"], "centralized_accuracy", "Job specification", "intact"):
        assert needle in html, needle


def test_report_shows_a_broken_lineage_instead_of_failing(world, tmp_path):
    world.put_version(1, model_hash="0" * 64)
    files = audit.report(world.client, JOB, tmp_path / "r")
    data = json.loads(files.json.read_text())
    assert data["summary"]["lineage_ok"] is False and "broken lineage" in data["summary"]["lineage_error"]
    assert "BROKEN" in files.html.read_text()
    with pytest.raises(BadInput, match="job nope not found"):
        audit.report(world.client, "nope", tmp_path / "r2")


def test_org_summary_counts_only_stake_as_slashed_and_shows_what_is_owed():
    """A slash owed at the policy's limit (50 orgs, four stake values) is a history entry of its own
    (``slash_owed``), not stake lost: the summary shows 60 owed and 0 slashed, then 100 slashed by
    dropping a level with 20 still owed."""
    from fabshim.contract import Context
    from fedfabric_cc import incentives
    from fedfabric_protocol.spec import Incentives
    from tests.chaincode import identities as ids
    from tests.chaincode.harness import Ledger, init

    fifty = [f"Org{i + 1}MSP" for i in range(50)]
    led = Ledger()
    init(led, stakes=tuple((100, 200, 300, 400)[i % 4] for i in range(50)), balances=(0,) * 50, orgs=fifty)
    client = MemClient(led, "Org1MSP")
    for r in (1, 2):
        orgs = {o["msp_id"]: o for o in led.call(ids.auditor("Org1MSP"), "list_orgs")}
        with led.stub.transaction(ids.admin("Org1MSP"), seconds=led.t):
            incentives.settle(Context(led.stub), Incentives(slash_absent=60), "job1", r, orgs, {}, ["Org3MSP"])
        s = audit.org_summary(client, "Org3MSP")
        assert (s["stake"], s["slashed"], s["slash_owed"]) == ((300, 0, 60) if r == 1 else (200, 100, 20))
    assert [(x["round"], x["slash"]) for x in s["rounds"]] == [(1, 0), (2, 100)]
    assert [b[2] for b in s["stake_history"]] == [300, 200]
