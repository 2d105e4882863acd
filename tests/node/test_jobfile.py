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


def test_server_optimizer_coefficients_become_decimal_strings():
    job = parse_job({**GOOD, "server_optimizer": {"kind": "yogi", "lr": 0.03, "tau": 1e-3}})
    assert job.draft["server_optimizer"] == {"kind": "yogi", "lr": "0.03", "tau": "0.001"}


def test_defaults_and_decimal_strings():
    job = parse_job({**GOOD, "training": {"lr": 0.01}, "dp": {"enabled": True, "clip_norm": 0.1}})
    d = job.draft
    assert job.privacy == "secure" and d["aggregation"] == {"rule": "fedavg"} and d["min_participants"] == 2
    assert d["hyperparams"]["lr"] == "0.01" and d["hyperparams"]["alpha"] == "0.5"
    assert d["dp"]["clip_norm_milli"] == 100 and d["dp"]["noise_multiplier_milli"] == 1000
    assert not any(isinstance(v, float) for v in d["hyperparams"].values())


@pytest.mark.parametrize("change,match", [
    ({"job_id": "bad id!"}, "job_id must match"),
    ({"dataset": "imagenet"}, "dataset must be one of breast_cancer"),
    ({"rounds": 0}, "rounds=0 out of range"),
    ({"rounds": "ten"}, "rounds must be an integer"),
    ({"model": {"arch": "transformer"}}, "model.arch must be one of logreg, mlp, cnn"),
    ({"model": {"arch": "mlp", "kwargs": {"hidden": 1.5}}}, "model.kwargs.hidden: floats are not allowed"),
    ({"model": {"arch": "mlp", "kwargs": {"width": 3}}}, "model.kwargs: unknown field(s) 'width'"),
    ({"training": {"lr": "fast"}}, "training.lr is not a decimal number"),
    ({"training": {"lr": -1}}, "training.lr=-1 out of range"),
    ({"training": {"epochs": 1, "momentum": 0.9}}, "training: unknown field(s) momentum"),
    ({"privacy": "homomorphic"}, "privacy must be one of secure, clear"),
    ({"aggregation": {"rule": "mean"}}, "aggregation.rule: unknown rule 'mean'"),
    ({"server_optimizer": {"kind": "adamw"}}, "server_optimizer.kind: unknown server optimizer 'adamw' (known: "),
    ({"server_optimizer": {"kind": "adam", "lr": 50}}, "server_optimizer.lr=50 out of range"),
    ({"server_optimizer": {"kind": "avgm", "beta1": 0.9}}, "server_optimizer: unknown field(s) 'beta1'"),
    ({"server_optimizer": "adam"}, "server_optimizer must be a JSON object"),
    ({"dp": {"enabled": "yes"}}, "dp.enabled must be true or false"),
    ({"dp": {"enabled": True, "clip_norm": 0.0001}}, "dp.clip_norm=0.0001 must be a multiple of 0.001"),
    ({"quorum": "3/2"}, "quorum 3/2 must be a share in (0, 1]"),
    ({"participants": []}, "participants must be a non-empty list"),
    ({"participants": ["org1", "org1"]}, "participants lists org1 more than once"),
    ({"min_participants": 4}, "participants has 3 orgs, fewer than min_participants=4"),
    ({"windows": {"submission_s": 0}}, "windows.submission_s=0 out of range"),
    ({"colour": "blue"}, "unknown field(s) colour"),
])
def test_bad_fields_are_named(change, match):
    with pytest.raises(JobFileError) as ei:
        parse_job({**GOOD, **change})
    assert match in str(ei.value), str(ei.value)
    assert "spec." not in str(ei.value)        # the file's words, not the ledger's


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
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(JobFileError, match="not a text file"):
        load_job_file(binary)
    tagged = tmp_path / "tag.yaml"
    tagged.write_text("job_id: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(JobFileError, match="not valid YAML"):
        load_job_file(tagged)


def test_unknown_participant_is_refused_before_the_ledger():
    with pytest.raises(ValueError, match="participants not in the consortium: org9"):
        job_spec(parse_job({**GOOD, "participants": ["org1", "org9"]}), MSP_OF)


def test_cli_bad_input_gives_a_clear_error_and_exit_code(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "job.yaml"
    bad.write_text(yaml.safe_dump({**GOOD, "dataset": "imagenet"}))
    res = runner.invoke(app, ["job", "create", str(bad), "--run-dir", str(tmp_path)])
    assert res.exit_code == 2 and "dataset must be one of" in res.output
    binary = tmp_path / "job.bin"
    binary.write_bytes(b"\xff\xfe\x00binary")
    res = runner.invoke(app, ["job", "create", str(binary), "--run-dir", str(tmp_path)])
    assert res.exit_code == 2 and "not a text file" in res.output and "Traceback" not in res.output
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
    assert spec["hyperparams"]["partition"] == "by_label" and spec["quorum"] == [2, 3]


def test_the_spec_names_its_participants_sorted_while_shards_keep_the_file_order():
    spec = job_spec(parse_job({**GOOD, "participants": ["org3", "org1"]}), MSP_OF)
    assert spec["participants"] == ["Org1MSP", "Org3MSP"]
    assert spec["hyperparams"]["shards"] == ["Org3MSP", "Org1MSP"]
    led = Ledger()
    init(led)
    rec = create_job(MemClient(led, ORGS[0], "admin"), parse_job({**GOOD, "participants": ["org3", "org1"]}), MSP_OF)
    assert rec["spec"]["participants"] == ["Org1MSP", "Org3MSP"]


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
    from fedfabric_protocol.rules import _integer as ints, rule_from_dict

    job = load_job_file(DEFAULT_JOB.parent / "mnist_clear_krum.yaml")
    assert job.draft["aggregation"] == {"rule": "multi_krum", "krum_f": 0} and len(job.participants) == 3
    rows = ints.stack([np.array([1, 2, 3]), np.array([1, 2, 4]), np.array([10**6] * 3)])
    kept = rule_from_dict({"rule": "multi_krum", "krum_f": 0}).aggregate(rows, [1, 1, 1]).used
    assert kept == (0, 1, 2)                                     # the outlier steers the mean
    text = (DEFAULT_JOB.parent / "mnist_clear_krum.yaml").read_text()
    assert "cannot steer" not in text and "CAN steer" in text
