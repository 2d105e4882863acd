"""`fedfabric audit …` / `fedfabric model …` through typer's CliRunner, connected to an audit world."""
from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from fedfabric.artifacts import model_hash
from fedfabric.cli import app

from tests.cli_ledger import serve
from tests.conftest import default_raw

from .ledger import JOB

runner = CliRunner()


@pytest.fixture
def connect(monkeypatch):
    """Point the CLI at a world; returns how it was asked to connect."""
    def use(world):
        return serve(monkeypatch, lambda org, user: world.client)
    return use


def run(*args: str):
    res = runner.invoke(app, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res


def test_every_command_has_a_manual_page():
    for group, cmds in (("audit", ("lineage", "round", "org", "verify", "report", "prov")),
                        ("model", ("list", "show", "export"))):
        top = run(group, "--help")
        assert top.exit_code == 0 and all(c in top.output for c in cmds)
        assert "Exit status" in top.output
        for c in cmds:
            page = run(group, c, "--help")
            assert page.exit_code == 0, (group, c)
            for opt in ("--org", "--user", "--run-dir", "--config", "--json"):
                assert opt in page.output, (group, c, opt)
    assert "recomputed" in run("audit", "verify", "--help").output
    assert "wasDerivedFrom" in run("audit", "prov", "--help").output
    assert "[default: Auditor]" in run("audit", "lineage", "--help").output
    assert "[default: User1]" in run("model", "list", "--help").output


def test_lineage_table_json_and_connection_defaults(shared, connect, monkeypatch, tmp_path):
    monkeypatch.setenv("FEDFABRIC_RUN_DIR", str(tmp_path / "run"))
    calls = connect(shared)
    res = run("audit", "lineage", JOB)
    assert res.exit_code == 0, res.output
    assert "lineage intact" in res.output and model_hash(shared.vectors[2])[:16] in res.output
    c = calls[-1]
    assert (c.org, c.user, c.run_root, c.config.channel) == ("org1", "Auditor", (tmp_path / "run").resolve(), "fl")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**default_raw(), "channel": "other"}))
    res = run("audit", "lineage", JOB, "--ref", "1", "--json", "--org", "Org2MSP", "--user", "User1",
              "--run-dir", str(tmp_path), "--config", str(tmp_path / "c.yaml"))
    out = json.loads(res.output)
    assert res.exit_code == 0 and out["ok"] and [x["version"] for x in out["lineage"]] == [1, 0]
    c = calls[-1]
    assert (c.org, c.user, c.run_root, c.config.channel) == ("org2", "User1", tmp_path.resolve(), "other")
    run("model", "list", JOB)
    assert calls[-1].user == "User1"


def test_lineage_broken_exits_1_and_bad_input_exits_2(world, connect):
    connect(world)
    world.put_version(1, model_hash="0" * 64)
    res = run("audit", "lineage", JOB)
    assert res.exit_code == 1 and "version 2 says its parent (version 1)" in res.output
    assert "Traceback" not in res.output
    res = run("audit", "lineage", JOB, "--json")
    assert res.exit_code == 1 and json.loads(res.output)["ok"] is False
    res = run("audit", "lineage", "nope")
    assert res.exit_code == 2 and "error: job nope not found" in res.output
    res = run("audit", "lineage", JOB, "--ref", "staging", "--json")
    assert res.exit_code == 2 and json.loads(res.output) == {"ok": False, "exit_code": 2,
                                                             "error": "job job1 has no version or alias 'staging'"}


def _earned(world, msp):
    return sum(world.client.get_round(JOB, r).outcome["settlement"]["rewards"].get(msp, 0) for r in (1, 2, 3))


def test_round_and_org(shared, connect):
    connect(shared)
    res = run("audit", "round", JOB, "2")
    out = res.output
    assert res.exit_code == 0 and "finalized" in out and "Org2MSP" in out and "left out" in out
    assert "Timeline" in out and "finalize" in out and "reveals" in out and "approving stake by voted result" in out
    out = json.loads(run("audit", "round", JOB, "3", "--json").output)
    assert out["state"] == "failed" and out["slashed"] == {"Org2MSP": 10}
    assert [t["step"] for t in out["timeline"]][-1] == "finalize"
    assert run("audit", "round", JOB, "9").exit_code == 2
    assert run("audit", "round", JOB, "0").exit_code == 2          # refused by the CLI itself
    assert run("audit", "round", JOB, "two").exit_code == 2
    res = run("audit", "org", "org2")
    assert res.exit_code == 0 and "Org2MSP" in res.output and str(_earned(shared, "Org2MSP")) in res.output
    assert "round-settlement" in res.output
    out = json.loads(run("audit", "org", "Org3MSP", "--json").output)
    assert out["msp_id"] == "Org3MSP" and out["slashed"] == 10
    res = run("audit", "org", "org9")
    assert res.exit_code == 2 and "no member org 'org9'" in res.output


def test_model_list_show_export_then_verify(shared, connect, tmp_path):
    connect(shared)
    res = run("model", "list", JOB)
    accuracy = [m["val_accuracy_milli"] for m in shared.client.get_version(JOB, 2)["metrics"].values()]
    assert res.exit_code == 0 and "latest" in res.output
    assert f"val_accuracy {sum(accuracy) / len(accuracy) / 1000:.4f}" in res.output   # equal stakes
    out = json.loads(run("model", "list", JOB, "--json").output)
    assert [v["version"] for v in out["versions"]] == [0, 1, 2] and out["aliases"] == {"latest": 2}
    res = run("model", "show", JOB, "1")
    assert res.exit_code == 0 and model_hash(shared.vectors[1]) in res.output and "Contributors" in res.output
    assert "fedavg" in res.output and "finalize" in res.output and "votes (Org3MSP)" in res.output
    assert json.loads(run("model", "show", JOB, "latest", "--json").output)["version"] == 2
    assert run("model", "show", JOB, "9").exit_code == 2

    f = tmp_path / "out" / "model.pt"
    res = run("model", "export", JOB, "latest", "--out", str(f), "--store", str(shared.store.root))
    assert res.exit_code == 0, res.output
    assert "verified" in res.output and f.is_file()
    assert torch.load(f, weights_only=True)["version"] == 2
    res = run("audit", "verify", str(f))
    assert res.exit_code == 0 and "VERIFIED" in res.output
    out = json.loads(run("audit", "verify", str(f), "--json", "--store", str(shared.store.root)).output)
    assert out["ok"] and out["version"] == 2 and out["problems"] == []


def test_export_default_store_and_its_failures(shared, connect, tmp_path):
    connect(shared)
    f = tmp_path / "m.pt"
    res = run("model", "export", JOB, "1", "--out", str(f), "--run-dir", str(tmp_path / "run"))
    assert res.exit_code == 2 and "has no parameters for version 1" in res.output and not f.exists()
    # the org node's store under <run-dir>/fl/<org>/artifacts is the default
    store = tmp_path / "run" / "fl" / "org1" / "artifacts"
    digest = model_hash(shared.vectors[1])
    (store / digest[:2]).mkdir(parents=True)
    (store / digest[:2] / digest).write_bytes(shared.store.get(digest))
    res = run("model", "export", JOB, "1", "--out", str(f), "--run-dir", str(tmp_path / "run"))
    assert res.exit_code == 0 and f.is_file(), res.output
    (store / digest[:2] / digest).write_bytes(b"\0" * 32)         # corrupted copy
    res = run("model", "export", JOB, "1", "--out", str(tmp_path / "n.pt"), "--run-dir", str(tmp_path / "run"))
    assert res.exit_code == 1 and "corrupted" in res.output and not (tmp_path / "n.pt").exists()
    assert run("model", "export", JOB, "1").exit_code == 2         # --out is required


def test_verify_exit_codes(shared, connect, tmp_path):
    connect(shared)
    f = tmp_path / "m.pt"
    assert run("model", "export", JOB, "2", "--out", str(f), "--store", str(shared.store.root)).exit_code == 0
    doc = torch.load(f, weights_only=True)
    doc["vector"][5] += 0.25
    doc["state_dict"]["0.bias"][1] += 0.25            # consistent: only the ledger can tell
    torch.save(doc, f)
    res = run("audit", "verify", str(f))
    assert res.exit_code == 1 and "NOT VERIFIED" in res.output and "the parameters were changed" in res.output
    out = json.loads(run("audit", "verify", str(f), "--json").output)
    assert out["ok"] is False and any("no version of job job1 has model hash" in p for p in out["problems"])
    res = run("audit", "verify", str(tmp_path / "missing.pt"))
    assert res.exit_code == 2 and "no such file" in res.output
    junk = tmp_path / "junk.pt"
    junk.write_text("hello")
    res = run("audit", "verify", str(junk))
    assert res.exit_code == 2 and "not a readable model file" in res.output and "Traceback" not in res.output


def test_report_command(shared, world, connect, tmp_path):
    connect(shared)
    out = tmp_path / "rep"
    res = run("audit", "report", JOB, "--out", str(out), "--store", str(shared.store.root))
    assert res.exit_code == 0 and "lineage intact" in res.output
    assert {p.name for p in out.iterdir()} == {"report.html", "report.json", "accuracy.png", "loss.png", "payouts.png"}
    info = json.loads(run("audit", "report", JOB, "--out", str(out), "--json").output)
    assert info["ok"] and info["html"].endswith("report.html") and len(info["images"]) == 3
    assert run("audit", "report", "nope", "--out", str(tmp_path / "x")).exit_code == 2

    connect(world)
    world.put_version(2, parent_hash="2" * 64)
    res = run("audit", "report", JOB, "--out", str(tmp_path / "broken"))
    assert res.exit_code == 1 and "lineage BROKEN" in res.output and (tmp_path / "broken" / "report.html").is_file()


def test_prov_command_writes_prov_json_and_refuses_a_broken_lineage(shared, world, connect, tmp_path):
    from prov.model import ProvDocument

    connect(shared)
    f = tmp_path / "out" / "job1.prov.json"
    res = run("audit", "prov", JOB, "--out", str(f))
    assert res.exit_code == 0, res.output
    assert f"wrote {f}" in res.output.replace("\n", "") and "3 agents" in res.output
    doc = ProvDocument.deserialize(f, format="json")
    assert len(doc.get_records()) > 0
    info = json.loads(run("audit", "prov", JOB, "--out", str(f), "--json").output)
    assert info["ok"] and info["records"]["agents"] == 3 and info["records"]["derivations"] > 0
    assert run("audit", "prov", JOB).exit_code == 2                  # --out is required
    assert run("audit", "prov", "nope", "--out", str(tmp_path / "x.json")).exit_code == 2

    connect(world)
    world.put_version(1, model_hash="0" * 64)
    res = run("audit", "prov", JOB, "--out", str(tmp_path / "broken.json"))
    assert res.exit_code == 1 and "broken lineage" in res.output and not (tmp_path / "broken.json").exists()


def test_connection_problems_are_one_line_errors(monkeypatch, tmp_path):
    def no_identity(org, user):
        raise FileNotFoundError(f"no identity {user!r} for {org}: run/…/msp is missing (is the network generated?)")
    serve(monkeypatch, no_identity)
    res = run("audit", "lineage", JOB)
    assert res.exit_code == 2 and "no identity 'Auditor' for org1" in res.output and "Traceback" not in res.output

    res = run("model", "list", JOB, "--org", "org7", "--json")
    assert res.exit_code == 2
    assert json.loads(res.output)["error"] == "unknown org 'org7' (consortium members: org1, org2, org3)"
    (tmp_path / "bad.yaml").write_text("orgs: 3\n")
    res = run("audit", "chain", "--config", str(tmp_path / "bad.yaml"), "--json")
    assert res.exit_code == 2 and json.loads(res.output)["error"].startswith("bad consortium config: ")
