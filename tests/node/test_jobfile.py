"""Job files: every field checked with a message naming it; the spec the ledger accepts."""
from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from fedfabric.cli import app
from fedfabric.client import Rejected
from fedfabric.node.bootstrap import create_job, job_spec
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
        rec = create_job(admin, job, MSP_OF)
        assert rec["spec"]["hyperparams"]["shards"] == ["Org1MSP", "Org2MSP", "Org3MSP"]
        assert rec["spec"]["participants"] == ["Org1MSP", "Org2MSP", "Org3MSP"]
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


# ---- shards built and checked before anything reaches the ledger
@pytest.mark.parametrize("partition,match", [
    ({"kind": "by_label"}, "partition by_label of breast_cancer over 3 orgs gives org3 (Org3MSP) no usable shard"),
    ({"kind": "dirichlet", "alpha": 0.001}, "partition dirichlet (alpha=0.001) of breast_cancer over 3 orgs gives org"),
])
def test_a_partition_that_leaves_an_org_without_data_is_refused_before_the_ledger(partition, match):
    led = Ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    before = led.snapshot()
    with pytest.raises(JobFileError, match=match.replace("(", r"\(").replace(")", r"\)")):
        create_job(admin, parse_job({**GOOD, "partition": partition}), MSP_OF)
    assert admin.calls == [] and led.snapshot() == before


def test_a_shard_too_small_to_train_on_is_refused_naming_the_org():
    many = {f"org{i}": f"Org{i}MSP" for i in range(1, 61)}
    job = parse_job({**GOOD, "dataset": "breast_cancer", "partition": {"kind": "iid"},
                     "participants": sorted(many, key=lambda o: int(o[3:]))})
    with pytest.raises(JobFileError, match=r"partition iid of breast_cancer over 60 orgs gives org1 \(Org1MSP\) "
                                           r"no usable shard: its shard has 8 samples"):
        job_spec(job, many)


def test_by_label_with_as_many_labels_as_orgs_is_accepted():
    spec = job_spec(parse_job({**GOOD, "participants": ["org1", "org2"], "partition": {"kind": "by_label"}}), MSP_OF)
    assert spec["hyperparams"]["partition"] == "by_label"


def test_the_spec_names_its_participants_sorted_while_shards_keep_the_file_order():
    spec = job_spec(parse_job({**GOOD, "participants": ["org3", "org1"]}), MSP_OF)
    assert spec["participants"] == ["Org1MSP", "Org3MSP"]
    assert spec["hyperparams"]["shards"] == ["Org3MSP", "Org1MSP"]
    led = Ledger()
    init(led)
    rec = create_job(MemClient(led, ORGS[0], "admin"), parse_job({**GOOD, "participants": ["org3", "org1"]}), MSP_OF)
    assert rec["spec"]["participants"] == ["Org1MSP", "Org3MSP"]


class _OldContract:
    """A client whose contract predates ``spec.participants``."""

    def __init__(self) -> None:
        self.created: list[dict] = []

    def create_job(self, spec):
        if "participants" in spec:
            raise Rejected("create_job", "spec: unknown field(s) participants", 400)
        self.created.append(spec)
        return type("W", (), {"value": {"job_id": spec["job_id"], "spec": spec}})()

    def list_orgs(self):
        return [{"msp_id": m, "status": "active", "stake": 100} for m in ORGS]


def test_an_older_contract_gets_the_job_without_participants_only_when_everyone_takes_part():
    old = _OldContract()
    rec = create_job(old, parse_job(dict(GOOD)), MSP_OF)
    assert "participants" not in rec["spec"] and len(old.created) == 1
    with pytest.raises(JobFileError, match="does not support a subset of participants"):
        create_job(old, parse_job({**GOOD, "participants": ["org1", "org2"]}), MSP_OF)
    assert len(old.created) == 1


def test_cli_refuses_an_unusable_partition_before_connecting(tmp_path):
    bad = tmp_path / "job.yaml"
    bad.write_text(yaml.safe_dump({**GOOD, "partition": {"kind": "by_label"}}))
    res = CliRunner().invoke(app, ["job", "create", str(bad), "--run-dir", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert "org3 (Org3MSP) no usable shard" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["job", "create", str(bad), "--job-id", "bad id", "--run-dir", str(tmp_path)])
    assert res.exit_code == 2 and "--job-id must match" in res.output


def test_the_krum_job_file_does_not_claim_robustness_it_lacks():
    """3 orgs force krum_f=0 (n >= 2f+3); Multi-Krum then keeps every update, an outlier included."""
    import numpy as np
    from fedfabric_cc import aggregation

    job = load_job_file(DEFAULT_JOB.parent / "mnist_clear_krum.yaml")
    assert job.aggregation == {"rule": "multi_krum", "krum_f": 0} and len(job.participants) == 3
    honest = [np.array([1, 2, 3], np.int64), np.array([1, 2, 4], np.int64)]
    _, kept = aggregation.multi_krum(honest + [np.array([10**6] * 3, np.int64)], 0)
    assert kept == [0, 1, 2]                                     # the outlier steers the mean
    text = (DEFAULT_JOB.parent / "mnist_clear_krum.yaml").read_text()
    assert "cannot steer" not in text and "CAN steer" in text
