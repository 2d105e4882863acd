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
     "spec.aggregation.krum_f=1 needs at least 5 participants (Multi-Krum: n > 2f+2 updates), min_participants is 3"),
    ({"privacy": "clear", "aggregation": {"rule": "multi_krum", "krum_f": 0, "krum_m": 4}, "min_participants": 3},
     "spec.aggregation.krum_m=4 must be at most min_participants - krum_f = 3"),
    ({"privacy": "clear", "aggregation": {"rule": "multi_krum", "krum_f": 0}, "min_participants": 2},
     "spec.aggregation.krum_f=0 needs at least 3 participants"),
    ({"privacy": "clear", "aggregation": {"rule": "multi_krum", "krum_f": 0, "krum_m": 0}, "min_participants": 3},
     "spec.aggregation.krum_m=0 out of range"),
    ({"privacy": "clear", "aggregation": {"rule": "multi_krum", "krum_f": -1}, "min_participants": 3},
     "spec.aggregation.krum_f=-1 out of range"),
    ({"privacy": "clear", "aggregation": {"rule": "trimmed_mean", "trim": 1}, "min_participants": 2},
     "spec.aggregation.trim=1 needs at least 3 participants (more than 2*trim updates), min_participants is 2"),
    ({"privacy": "clear", "aggregation": {"rule": "trimmed_mean", "trim": 0}, "min_participants": 2},
     "spec.aggregation.trim=0 out of range"),
    ({"min_participants": 1}, "secure mode with rule fedavg needs at least 2"),
    ({"min_participants": 4}, "spec.min_participants=4 exceeds the 3 active member orgs with stake"),
    ({"quorum": "4/3"}, "share in (0, 1]"),
    ({"quorum": 0.66}, "floats are not allowed"),
    ({"windows": {"registration_s": 60, "submission_s": 0, "approval_s": 1}}, "spec.windows.submission_s=0"),
    ({"windows": {"registration_s": 60, "submission_s": 10}}, "spec.windows.approval_s is required"),
    ({"windows": {"registration_s": 60, "submission_s": 10, "approval_s": 5, "reveal_s": 0}},
     "spec.windows.reveal_s=0 out of range"),
    ({"windows": {"registration_s": 60, "submission_s": 10, "approval_s": 5, "reveal": 9}},
     "spec.windows: unknown field(s) reveal"),
    ({"incentives": {"slash_no_reveal": -5}}, "spec.incentives.slash_no_reveal=-5 out of range"),
    ({"participants": "Org1MSP"}, "spec.participants must be a list of member MSP ids"),
    ({"participants": ["Org1MSP", 2]}, "spec.participants must be a list of member MSP ids"),
    ({"participants": ["Org1MSP", "Org9MSP"]}, "spec.participants: Org9MSP is not a member of the consortium"),
    ({"participants": ["Org2MSP", "Org1MSP", "Org2MSP"]}, "spec.participants lists Org2MSP more than once"),
    ({"participants": ["Org2MSP"]}, "spec.participants has 1 orgs, fewer than spec.min_participants=2"),
    ({"participants": []}, "spec.participants has 0 orgs, fewer than spec.min_participants=2"),
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


def test_spec_defaults_participants_reveal_window_and_slash(led):
    s = led.call(ADMIN, "create_job", job_spec())["spec"]
    assert s["participants"] == ORGS
    assert s["windows"]["reveal_s"] == 300 and s["incentives"]["slash_no_reveal"] == 10
    short = {"registration_s": 5, "submission_s": 10, "approval_s": 5}
    assert led.call(ADMIN, "create_job", job_spec("job2", windows=short))["spec"]["windows"]["reveal_s"] == 60
    s = led.call(ADMIN, "create_job", job_spec("job3", participants=["Org3MSP", "Org1MSP"],
                                               windows=dict(short, reveal_s=7)))["spec"]
    assert s["participants"] == ["Org1MSP", "Org3MSP"] and s["windows"]["reveal_s"] == 7
    assert led.last_event.json()["participants"] == ["Org1MSP", "Org3MSP"]


def test_feasible_robust_rules_are_accepted(led):
    clear = {"privacy": "clear", "min_participants": 3}
    for i, rule in enumerate([{"rule": "multi_krum", "krum_f": 0, "krum_m": 3}, {"rule": "multi_krum", "krum_f": 0},
                              {"rule": "trimmed_mean", "trim": 1}, {"rule": "median"}]):
        assert led.call(ADMIN, "create_job", job_spec(f"ok{i}", aggregation=rule, **clear))["spec"]["aggregation"] == rule


def test_default_participants_need_stake():
    led = Ledger()
    init(led, stakes=(100, 0, 0))
    led.reject(ADMIN, "create_job", job_spec(), match="spec.min_participants=2 exceeds the 1 active member orgs with stake")
