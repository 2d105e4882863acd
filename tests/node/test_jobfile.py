"""Job files: every field checked with a message naming it; the spec the ledger accepts."""
from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from fedfabric.cli import app
from fedfabric.node.bootstrap import job_spec
from fedfabric.node.demo import DEFAULT_JOB
from fedfabric.node.jobfile import JobFileError, load_job_file, parse_job

from tests.chaincode.harness import ORGS, Ledger, init

from .memledger import MemClient

MSP_OF = {f"org{i}": f"Org{i}MSP" for i in (1, 2, 3)}
GOOD = {"job_id": "j1", "dataset": "breast_cancer", "rounds": 2, "participants": ["org1", "org2", "org3"]}


def test_bundled_job_files_are_valid_and_accepted_by_the_contract():
    led = Ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    for path in sorted(DEFAULT_JOB.parent.glob("*.yaml")):
        job = load_job_file(path)
        rec = admin.create_job(job_spec(job, MSP_OF)).value
        assert rec["spec"]["hyperparams"]["shards"] == ["Org1MSP", "Org2MSP", "Org3MSP"]
        assert rec["spec"]["model"]["num_params"] > 0


def test_defaults_and_decimal_strings():
    job = parse_job(dict(GOOD))
    assert job.privacy == "secure" and job.aggregation == {"rule": "fedavg"} and job.min_participants == 2
    assert job.hyperparams["lr"] == "0.05" and job.hyperparams["alpha"] == "0.5"
    assert not any(isinstance(v, float) for v in job.hyperparams.values())


@pytest.mark.parametrize("change,match", [
    ({"job_id": "bad id!"}, "job_id must match"),
    ({"dataset": "imagenet"}, "dataset must be one of"),
    ({"rounds": 0}, "job.rounds=0 out of range"),
    ({"rounds": "ten"}, "job.rounds must be an integer"),
    ({"model": {"arch": "transformer"}}, "model.arch must be one of"),
    ({"model": {"arch": "mlp", "kwargs": {"hidden": 1.5}}}, "model.kwargs must map"),
    ({"training": {"lr": "fast"}}, "training.lr must be a number"),
    ({"training": {"lr": -1}}, "training.lr=-1 out of range"),
    ({"training": {"epochs": 1, "momentum": 0.9}}, "training: unknown field(s) momentum"),
    ({"privacy": "homomorphic"}, "privacy must be one of"),
    ({"aggregation": {"rule": "mean"}}, "aggregation.rule must be one of"),
    ({"dp": {"enabled": "yes"}}, "dp.enabled must be true or false"),
    ({"quorum": "3/2"}, "quorum must be a share"),
    ({"participants": []}, "participants must be a non-empty list"),
    ({"participants": ["org1", "org1"]}, "participants lists an org twice"),
    ({"min_participants": 4}, "min_participants=4 exceeds the 3 participants"),
    ({"windows": {"submission_s": 0}}, "windows.submission_s=0 out of range"),
    ({"colour": "blue"}, "unknown field(s) colour"),
])
def test_bad_fields_are_named(change, match):
    with pytest.raises(JobFileError) as ei:
        parse_job({**GOOD, **change})
    assert match in str(ei.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(JobFileError, match="no such job file"):
        load_job_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("job_id: [unclosed\n")
    with pytest.raises(JobFileError, match="not valid YAML"):
        load_job_file(bad)
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(JobFileError, match="must be a YAML mapping"):
        load_job_file(notmap)


def test_unknown_participant_is_refused_before_the_ledger():
    with pytest.raises(ValueError, match="participants not in the consortium: org9"):
        job_spec(parse_job({**GOOD, "participants": ["org1", "org9"]}), MSP_OF)


def test_cli_bad_input_gives_a_clear_error_and_exit_code(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "job.yaml"
    bad.write_text(yaml.safe_dump({**GOOD, "dataset": "imagenet"}))
    res = runner.invoke(app, ["job", "create", str(bad), "--run-dir", str(tmp_path)])
    assert res.exit_code == 2 and "dataset must be one of" in res.output
    res = runner.invoke(app, ["job", "create", str(tmp_path / "nope.yaml"), "--run-dir", str(tmp_path)])
    assert res.exit_code == 2 and "no such job file" in res.output
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    res = runner.invoke(app, ["job", "create", str(good), "--org", "org7", "--run-dir", str(tmp_path)])
    assert res.exit_code == 2 and "unknown org 'org7'" in res.output
    res = runner.invoke(app, ["job", "create", str(good), "--run-dir", str(tmp_path)])
    assert res.exit_code == 2 and "is the network generated?" in res.output
    res = runner.invoke(app, ["node", "--org", "org1", "--job", "j1", "--config", str(bad)])
    assert res.exit_code == 2 and "bad consortium config" in res.output
