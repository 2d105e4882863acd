"""Jobs on the ledger: create (version 0, round 1 opened), get, list; the spec's canonical form round-trips."""
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
    assert job["status"] == "active" and job["current_round"] == 1 and job["created_by"] == "Org1MSP"
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


def test_what_get_job_returns_is_accepted_back_by_create_job(led):
    stored = led.call(ADMIN, "create_job", job_spec())["spec"]
    assert stored["quorum"] == [2, 3]
    again = led.call(ADMIN, "create_job", {**stored, "job_id": "job2"})["spec"]
    assert again == {**stored, "job_id": "job2"}


def test_only_admins_of_members_create_and_duplicates_are_refused(led):
    led.call(ADMIN, "create_job", job_spec())
    led.reject(ADMIN, "create_job", job_spec(), match="job job1 already exists", status=409)
    led.reject(ids.trainer(ORGS[0]), "create_job", job_spec("j2"), match="role 'trainer' is not allowed", status=403)
    led.reject(ids.auditor(ORGS[0]), "create_job", job_spec("j2"), match="auditors are read-only", status=403)
    Ledger().reject(ADMIN, "create_job", job_spec(), match="is not a member")


def test_participants_must_be_active_members(led):
    led.reject(ADMIN, "create_job", job_spec(participants=["Org1MSP", "Org9MSP"]),
               match="spec.participants: Org9MSP is not a member of the consortium")
    s = led.call(ADMIN, "create_job", job_spec(participants=["Org3MSP", "Org1MSP"]))["spec"]
    assert s["participants"] == ["Org1MSP", "Org3MSP"] and s["hyperparams"]["shards"] == ["Org3MSP", "Org1MSP"]
    assert led.last_event.json()["participants"] == ["Org1MSP", "Org3MSP"]
    assert sorted(led.call(ids.trainer(ORGS[0]), "get_round", "job1", 1)["stakes"]) == ["Org1MSP", "Org3MSP"]


def test_default_participants_are_the_members_with_stake():
    led = Ledger()
    init(led, stakes=(100, 0, 0))
    spec = job_spec()
    del spec["participants"]
    led.reject(ADMIN, "create_job", spec, match="spec.participants has 1 orgs, fewer than spec.min_participants=2")
    spec["min_participants"] = 1
    spec["privacy"] = "clear"
    led.reject(ADMIN, "create_job", spec, match="must name exactly the participants (Org1MSP)")
    spec["hyperparams"]["shards"] = ["Org1MSP"]
    assert led.call(ADMIN, "create_job", spec)["spec"]["participants"] == ["Org1MSP"]


def test_hostile_hyperparameters_are_refused_before_anything_is_written(led):
    deep: dict = {}
    cur = deep
    for _ in range(900):
        cur["a"] = {}
        cur = cur["a"]
    for hyper, match in (({"seed": "not-a-number"}, "spec.hyperparams.seed must be an integer"),
                         ({"dataset": "x" * (4 << 20)}, "spec.hyperparams.dataset must be one of"),
                         ({"arch_kwargs": deep}, "nested deeper than 8 levels")):
        spec = job_spec()
        spec["hyperparams"].update(hyper)
        e = led.reject(ADMIN, "create_job", spec, match=match)
        assert len(e.message) < 400
