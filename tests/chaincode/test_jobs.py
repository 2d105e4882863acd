import pytest

from . import identities as ids
from .harness import ORGS, Ledger, h, init, job_spec

ADMIN = ids.admin(ORGS[0])


@pytest.fixture
def led():
    led = Ledger()
    init(led)
    return led


def test_create_get_list(led):
    job = led.call(ADMIN, "create_job", job_spec())
    assert job["status"] == "active" and job["current_round"] == 0 and job["created_by"] == "Org1MSP"
    assert job["spec"]["dp"] == {"enabled": False} and job["spec"]["max_abs"] == 2**31 - 1
    assert led.last_event.name == "JobCreated"
    assert led.call(ids.auditor(ORGS[2]), "get_job", "job1") == job
    v0 = led.call(ids.trainer(ORGS[1]), "get_version", "job1", "latest")
    assert v0["version"] == 0 and v0["model_hash"] == h("v0") and v0["parents"] == []
    for i in range(2, 6):
        led.call(ADMIN, "create_job", job_spec(f"job{i}"))
    page = led.call(ids.trainer(ORGS[0]), "list_jobs", 3, "")
    assert [j["job_id"] for j in page["jobs"]] == ["job1", "job2", "job3"] and page["bookmark"]
    page2 = led.call(ids.trainer(ORGS[0]), "list_jobs", 3, page["bookmark"])
    assert [j["job_id"] for j in page2["jobs"]] == ["job4", "job5"] and page2["bookmark"] == ""
    led.reject(ids.trainer(ORGS[0]), "list_jobs", 0, "", match="page_size")
    led.reject(ADMIN, "get_job", "nope", match="job nope not found", status=404)


def test_duplicate_job(led):
    led.call(ADMIN, "create_job", job_spec())
    led.reject(ADMIN, "create_job", job_spec(), match="job job1 already exists", status=409)


def test_needs_consortium():
    Ledger().reject(ADMIN, "create_job", job_spec(), match="is not a member")


def _model(**over):
    m = dict(job_spec()["model"])
    m.update(over)
    return m


BAD_SPECS = [
    ({"job_id": "bad id!"}, "spec.job_id must match"),
    ({"colour": 1}, "unknown field(s) colour"),
    ({"model": _model(arch_hash="XYZ")}, "spec.model.arch_hash must be a lowercase hex"),
    ({"model": _model(initial_hash=None)}, "spec.model.initial_hash"),
    ({"model": _model(num_params=0)}, "spec.model.num_params=0 out of range"),
    ({"model": _model(extra=1)}, "spec.model: unknown field(s) extra"),
    ({"hyperparams": {"lr": 0.01}}, "spec.hyperparams.lr: floats are not allowed"),
    ({"hyperparams": []}, "spec.hyperparams must be an object"),
    ({"rounds": 0}, "spec.rounds=0 out of range"),
    ({"rounds": "3"}, "spec.rounds must be an integer"),
    ({"privacy": "open"}, "spec.privacy must be 'secure' or 'clear'"),
    ({"aggregation": {"rule": "mean"}}, "spec.aggregation.rule must be one of"),
    ({"aggregation": {"rule": "median"}}, "secure mode supports only fedavg"),
    ({"privacy": "clear", "aggregation": {"rule": "trimmed_mean"}}, "spec.aggregation.trim is required"),
    ({"privacy": "clear", "aggregation": {"rule": "median", "trim": 1}}, "takes no parameters"),
    ({"privacy": "clear", "aggregation": {"rule": "multi_krum", "krum_f": 1}, "min_participants": 3},
     "needs at least 5"),
    ({"min_participants": 1}, "secure mode with rule fedavg needs at least 2"),
    ({"min_participants": 4}, "exceeds the 3 member orgs"),
    ({"quorum": "4/3"}, "share in (0, 1]"),
    ({"quorum": 0.66}, "floats are not allowed"),
    ({"windows": {"registration_s": 60, "submission_s": 0, "approval_s": 1}}, "spec.windows.submission_s=0"),
    ({"windows": {"registration_s": 60, "submission_s": 10}}, "spec.windows.approval_s is required"),
    ({"dp": {"enabled": "yes"}}, "spec.dp.enabled must be true or false"),
    ({"dp": {"enabled": True, "clip_norm_milli": 1000}}, "spec.dp.noise_multiplier_milli is required"),
    ({"frac_bits": 8}, "spec.frac_bits=8 out of range"),
    ({"max_abs": 0}, "spec.max_abs=0"),
    ({"incentives": {"reward_per_round": -1}}, "reward_per_round=-1 out of range"),
]


@pytest.mark.parametrize("over,match", BAD_SPECS)
def test_spec_rejections(led, over, match):
    led.reject(ADMIN, "create_job", job_spec(**over), match=match)


def test_spec_must_be_object(led):
    led.reject(ADMIN, "create_job", [1], match="spec must be a JSON object")
