import pytest

from fedfabric_cc import policy

from . import identities as ids
from .harness import ORGS, Ledger, init, job_spec


@pytest.fixture
def led():
    led = Ledger()
    init(led)
    return led


def test_init_consortium_creates_orgs_history_policy_and_event():
    led = Ledger()
    out = init(led, stakes=(50, 30, 20), balances=(5, 0, 0))
    assert out["policy"]["classes"] == [{"stake": 50, "orgs": ["Org1MSP"]}, {"stake": 30, "orgs": ["Org2MSP"]},
                                        {"stake": 20, "orgs": ["Org3MSP"]}]
    assert out["policy"]["vectors"] == [[1, 1, 0], [1, 0, 1]]     # Org1 with Org2, or Org1 with Org3
    assert out["policy"]["lifecycle"] == {"threshold": [2, 3], "classes": out["policy"]["classes"]}
    orgs = led.call(ids.auditor(ORGS[1]), "list_orgs")
    assert [(o["msp_id"], o["stake"], o["balance"], o["status"]) for o in orgs] == [
        ("Org1MSP", 50, 5, "active"), ("Org2MSP", 30, 0, "active"), ("Org3MSP", 20, 0, "active")]
    hist = led.call(ids.trainer(ORGS[0]), "org_history", "Org1MSP")
    assert [(e["field"], e["delta"], e["reason"]) for e in hist] == [("stake", 50, "genesis"), ("balance", 5, "genesis")]
    assert led.last_event.name == "ConsortiumInitialized"


@pytest.mark.parametrize("orgs,quorum,match", [
    ([], "2/3", "non-empty"),
    ([{"msp_id": "Org1MSP", "stake": 1}, {"msp_id": "Org1MSP", "stake": 1}], "2/3", "duplicate msp_id"),
    ([{"msp_id": "Org1MSP", "stake": -1}], "2/3", "out of range"),
    ([{"msp_id": "Org1MSP", "stake": 1.5}], "2/3", "must be an integer"),
    ([{"msp_id": "Org1MSP", "stake": 1, "color": "red"}], "2/3", "unknown field"),
    ([{"msp_id": "bad msp", "stake": 1}], "2/3", "msp_id must match"),
    ([{"msp_id": "Org1MSP", "stake": 1}], "3/2", "share in (0, 1]"),
    ([{"msp_id": "Org1MSP", "stake": 1}], "most", "must look like \"2/3\""),
    ([{"msp_id": "Org1MSP", "stake": 0}], "2/3", "total stake must be positive"),
    ([{"msp_id": "Org2MSP", "stake": 1}], "2/3", "not in the org list"),
])
def test_init_consortium_rejections(orgs, quorum, match):
    Ledger().reject(ids.admin("Org1MSP"), "init_consortium", orgs, quorum, match=match)


def test_init_only_once_and_only_by_admin(led):
    led.reject(ids.admin(ORGS[0]), "init_consortium", [{"msp_id": "Org1MSP", "stake": 1}], "1/2",
               match="already initialized", status=409)
    Ledger().reject(ids.trainer(ORGS[0]), "init_consortium", [{"msp_id": "Org1MSP", "stake": 1}], "1/2",
                    match="requires an org admin")


def test_roles(led):
    led.reject(ids.auditor(ORGS[0]), "create_job", job_spec(), match="auditors are read-only", status=403)
    led.reject(ids.auditor(ORGS[0]), "transfer_stake", "Org2MSP", 1, match="auditors are read-only")
    led.reject(ids.peer(ORGS[0]), "get_org", "Org1MSP", match="no fedfabric role")
    led.reject(ids.creator("Org1MSP", "x", ("client",), (("fedfabric.role", "king"),)), "get_org", "Org1MSP",
               match="unknown fedfabric.role 'king'")
    led.reject(ids.admin("EvilMSP"), "get_org", "Org1MSP", match="EvilMSP is not a member", status=403)
    led.reject(ids.trainer(ORGS[0]), "create_job", job_spec(), match="role 'trainer' is not allowed")
    trainer_attr = ids.creator("Org2MSP", "t", ("client",), (("fedfabric.role", "trainer"),))
    assert led.call(trainer_attr, "get_org", "Org2MSP")["msp_id"] == "Org2MSP"
    admin_attr = ids.creator("Org2MSP", "a", ("client",), (("fedfabric.role", "admin"),))
    assert led.call(admin_attr, "create_job", job_spec())["job_id"] == "job1"


def test_transfer_stake_recompiles_policy_and_rekeys_job_endorsement(led):
    led.call(ids.admin(ORGS[0]), "create_job", job_spec())
    jk = led.stub.create_composite_key("job", ["job1"])
    assert policy.decode_envelope(led.stub.vparams[jk]) == (2, ("Org1MSP", "Org2MSP", "Org3MSP"))
    out = led.call(ids.admin(ORGS[1]), "transfer_stake", "Org1MSP", 90)
    assert out["from"]["stake"] == 10 and out["to"]["stake"] == 190
    pol = led.call(ids.auditor(ORGS[2]), "get_policy")
    assert pol["vectors"] == [[1, 1, 0], [1, 0, 1]] and pol["policy"] == "AND('Org1MSP.peer',OR('Org2MSP.peer','Org3MSP.peer'))"
    assert led.stub.vparams[jk] == bytes.fromhex(pol["envelope_hex"])
    assert pol == {**policy.compile_policy({"Org1MSP": 190, "Org2MSP": 10, "Org3MSP": 100}, 2, 3),
                   "lifecycle": {"threshold": [2, 3], "classes": [{"stake": 100, "orgs": ORGS}]}}
    vk = led.stub.create_composite_key("version", ["job1", "000000"])
    assert led.stub.vparams[vk] == led.stub.vparams[jk]
    hist = led.call(ids.trainer(ORGS[1]), "org_history", "Org2MSP")
    assert hist[-1]["delta"] == -90 and hist[-1]["reason"] == "transfer" and hist[-1]["after"] == 10
    ev = led.last_event
    assert ev.name == "StakeTransferred" and ev.json()["amount"] == 90


def test_transfer_rejections(led):
    a = ids.admin(ORGS[0])
    led.reject(a, "transfer_stake", "Org1MSP", 1, match="own org")
    led.reject(a, "transfer_stake", "Org9MSP", 1, match="Org9MSP is not a member")
    led.reject(a, "transfer_stake", "Org2MSP", 0, match="out of range")
    led.reject(a, "transfer_stake", "Org2MSP", 101, match="holds 100 stake")
    led.reject(ids.trainer(ORGS[0]), "transfer_stake", "Org2MSP", 1, match="role 'trainer'")


def test_stake_adjustment_needs_stake_quorum_of_admins(led):
    p = led.call(ids.admin(ORGS[0]), "propose_stake_adjustment", "p1", "Org3MSP", 50, "new hospital data")
    assert p["status"] == "pending"
    assert led.call(ids.auditor(ORGS[0]), "get_org", "Org3MSP")["stake"] == 100
    led.reject(ids.admin(ORGS[0]), "approve_stake_adjustment", "p1", match="already approved")
    p = led.call(ids.admin(ORGS[1]), "approve_stake_adjustment", "p1")
    assert p["status"] == "applied" and led.last_event.name == "StakeAdjusted"
    assert led.call(ids.auditor(ORGS[0]), "get_org", "Org3MSP")["stake"] == 150
    led.reject(ids.admin(ORGS[2]), "approve_stake_adjustment", "p1", match="already applied")
    led.reject(ids.admin(ORGS[2]), "approve_stake_adjustment", "nope", match="not found", status=404)
    led.reject(ids.admin(ORGS[0]), "propose_stake_adjustment", "p1", "Org3MSP", 1, "x", match="already exists")
    led.reject(ids.admin(ORGS[0]), "propose_stake_adjustment", "p2", "Org3MSP", -151, "x", match="cannot burn 151")
    led.reject(ids.admin(ORGS[0]), "propose_stake_adjustment", "p2", "Org3MSP", 0, "x", match="must not be zero")
    led.reject(ids.admin(ORGS[0]), "propose_stake_adjustment", "p2", "Org3MSP", 5, "", match="reason")
    led.reject(ids.admin(ORGS[0]), "propose_stake_adjustment", "p2", "OrgXMSP", 5, "x", match="not a member")
    hist = led.call(ids.auditor(ORGS[0]), "key_history", "stakeprop", ["p1"])
    assert [x["value"]["status"] for x in hist] == ["applied", "pending"]


def test_single_org_majority_applies_its_own_proposal_immediately():
    led = Ledger()
    init(led, stakes=(80, 10, 10))
    p = led.call(ids.admin(ORGS[0]), "propose_stake_adjustment", "p1", "Org2MSP", -10, "left the consortium")
    assert p["status"] == "applied"
    pol = led.call(ids.auditor(ORGS[0]), "get_policy")
    assert pol["policy"] == "'Org1MSP.peer'"


def test_arguments_are_parsed_by_annotation(led):
    led.reject(ids.admin(ORGS[0]), "transfer_stake", "Org2MSP", "ten", match="cannot parse argument 'amount'")
    led.reject(ids.admin(ORGS[0]), "create_job", "{not json", match="cannot parse argument 'spec'")
