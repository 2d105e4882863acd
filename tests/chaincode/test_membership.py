"""Admitting and removing orgs by governance: proposals on a channel update's hash, approvals by stake,
the admitted member (no stake until granted), the removed one (suspended, policy recompiled), and the
record of who signed the channel update."""
import hashlib

import pytest

from . import identities as ids
from .harness import ORGS, Ledger, h, init

A = ids.admin
DEF, UPD = h("org4 definition"), h("config update adding Org4MSP")


@pytest.fixture
def led():
    led = Ledger()
    init(led)
    return led


def _admit(led: Ledger, pid: str = "add-org4", by=ORGS[:2]) -> dict:
    p = led.call(A(by[0]), "propose_membership", pid, "add", "Org4MSP", "org4", DEF, UPD, "a fourth hospital")
    for m in by[1:]:
        p = led.call(A(m), "approve_membership", pid, UPD)
    return p


def test_admission_needs_the_stake_quorum_then_the_org_is_a_member_without_stake(led):
    p = led.call(A(ORGS[0]), "propose_membership", "add-org4", "add", "Org4MSP", "org4", DEF, UPD, "a fourth hospital")
    assert (p["status"], p["approvals"], p["update_sha256"]) == ("pending", ["Org1MSP"], UPD)
    assert led.last_event.name == "MembershipProposed"
    led.reject(ids.auditor(ORGS[0]), "get_org", "Org4MSP", match="not found", status=404)
    p = led.call(A(ORGS[1]), "approve_membership", "add-org4", UPD)
    assert p["status"] == "applied" and p["approvals"] == ["Org1MSP", "Org2MSP"] and len(p["tx_ids"]) == 2
    ev = led.last_event
    assert ev.name == "OrgAdmitted" and ev.json()["msp_id"] == "Org4MSP" and ev.json()["policy"] is None
    org = led.call(ids.auditor(ORGS[0]), "get_org", "Org4MSP")
    assert (org["status"], org["stake"], org["balance"], org["admitted_by"]) == ("active", 0, 0, "add-org4")
    [entry] = led.call(ids.auditor(ORGS[0]), "org_history", "Org4MSP")
    assert (entry["field"], entry["before"], entry["after"], entry["reason"]) == ("status", None, "active", "admitted")
    # no stake yet: the endorsement policy is unchanged, until the consortium grants stake
    assert led.call(ids.auditor(ORGS[0]), "get_policy")["classes"] == [{"stake": 100, "orgs": ORGS}]
    led.call(A(ORGS[0]), "propose_stake_adjustment", "grant-4", "Org4MSP", 100, "joined the study")
    led.call(A(ORGS[1]), "approve_stake_adjustment", "grant-4")
    pol = led.call(A("Org4MSP"), "get_policy")
    assert pol["classes"] == [{"stake": 100, "orgs": ORGS + ["Org4MSP"]}] and pol["vectors"] == [[3]]


def test_the_admitted_org_writes_as_a_member(led):
    _admit(led)
    led.call(A("Org4MSP"), "propose_status_change", "s-by-4", "Org3MSP", "suspended", "org4 can propose")
    assert led.call(A("Org4MSP"), "get_org", "Org4MSP")["msp_id"] == "Org4MSP"


def test_approvals_must_name_the_same_update(led):
    led.call(A(ORGS[0]), "propose_membership", "add-org4", "add", "Org4MSP", "org4", DEF, UPD, "x")
    led.reject(A(ORGS[1]), "approve_membership", "add-org4", h("another update"),
               match="approve the update the proposal names")
    led.reject(A(ORGS[0]), "approve_membership", "add-org4", UPD, match="Org1MSP already approved", status=409)
    led.reject(A(ORGS[1]), "approve_membership", "nope", UPD, match="not found", status=404)


def test_removal_suspends_the_org_and_recompiles_the_policy(led):
    p = led.call(A(ORGS[0]), "propose_membership", "rm-3", "remove", "Org3MSP", "org3", DEF, UPD, "left the study")
    p = led.call(A(ORGS[1]), "approve_membership", "rm-3", UPD)
    assert p["status"] == "applied" and led.last_event.name == "OrgRemoved"
    moved = led.last_event.json()["policy"]
    assert moved["text"] == "AND('Org1MSP.peer','Org2MSP.peer')" and moved["threshold"] == [2, 3]
    pol = led.call(ids.auditor("Org1MSP"), "get_policy")
    assert moved["envelope_sha256"] == hashlib.sha256(bytes.fromhex(pol["envelope_hex"])).hexdigest()
    org = led.call(ids.auditor(ORGS[0]), "get_org", "Org3MSP")
    assert (org["status"], org["removed_by"], org["stake"]) == ("suspended", "rm-3", 100)
    hist = led.call(ids.auditor(ORGS[0]), "org_history", "Org3MSP")[-1]
    assert (hist["field"], hist["after"], hist["reason"], hist["ref"]) == ("status", "suspended", "removed",
                                                                         {"proposal_id": "rm-3"})
    led.reject(A(ORGS[2]), "propose_stake_adjustment", "x", "Org1MSP", 5, "x", match="Org3MSP is suspended")
    led.reject(A(ORGS[0]), "propose_membership", "rm-3b", "remove", "Org3MSP", "org3", DEF, UPD, "again",
               match="Org3MSP was already removed (proposal rm-3)", status=409)


def test_channel_update_signers_are_recorded_once_after_approval(led):
    led.call(A(ORGS[0]), "propose_membership", "add-org4", "add", "Org4MSP", "org4", DEF, UPD, "x")
    led.reject(A(ORGS[0]), "record_channel_update", "add-org4", UPD, ["Org1MSP"], 9,
               match="the consortium has not approved it", status=409)
    led.call(A(ORGS[1]), "approve_membership", "add-org4", UPD)
    led.reject(A(ORGS[2]), "record_channel_update", "add-org4", h("x"), ["Org1MSP"], 9, match="approved channel update")
    led.reject(A(ORGS[2]), "record_channel_update", "add-org4", UPD, [], 9, match="signers must be a non-empty list")
    led.reject(A(ORGS[2]), "record_channel_update", "add-org4", UPD, ["bad msp!"], 9, match="signers[] must match")
    led.reject(A(ORGS[2]), "record_channel_update", "add-org4", UPD, ["Org1MSP"], 0, match="config_block must be")
    p = led.call(A(ORGS[2]), "record_channel_update", "add-org4", UPD, ["Org2MSP", "Org1MSP", "Org2MSP"], 9)
    assert p["channel_update"]["signers"] == ["Org1MSP", "Org2MSP"] and p["channel_update"]["config_block"] == 9
    assert p["channel_update"]["recorded_by"] == "Org3MSP"
    assert led.last_event.name == "ChannelUpdateRecorded"
    led.reject(A(ORGS[2]), "record_channel_update", "add-org4", UPD, ["Org1MSP"], 10, match="already recorded",
               status=409)
    assert led.call(ids.auditor(ORGS[0]), "get_membership", "add-org4") == p
    assert [x["proposal_id"] for x in led.call(ids.auditor(ORGS[1]), "list_memberships")] == ["add-org4"]
    history = led.call(ids.auditor(ORGS[0]), "key_history", "memberprop", ["add-org4"])
    assert [x["value"]["status"] for x in history] == ["applied", "applied", "pending"]


def test_a_stake_majority_decides_not_the_number_of_orgs():
    led = Ledger()
    init(led, stakes=(500, 100, 100))
    p = led.call(A("Org2MSP"), "propose_membership", "add-org4", "add", "Org4MSP", "org4", DEF, UPD, "x")
    p = led.call(A("Org3MSP"), "approve_membership", "add-org4", UPD)
    assert p["status"] == "pending"           # 200 of 700 stake: two orgs of three are not enough
    p = led.call(A("Org1MSP"), "approve_membership", "add-org4", UPD)
    assert p["status"] == "applied"


@pytest.mark.parametrize("args,match", [
    (("p1", "invite", "Org4MSP", "org4", DEF, UPD, "x"), "action must be one of add, remove"),
    (("p1", "add", "Org 4", "org4", DEF, UPD, "x"), "msp_id must match"),
    (("p1", "add", "Org4MSP", "", DEF, UPD, "x"), "name must be a string"),
    (("p1", "add", "Org4MSP", "org4", "abc", UPD, "x"), "definition_sha256 must be a SHA-256"),
    (("p1", "add", "Org4MSP", "org4", DEF, UPD.upper(), "x"), "update_sha256 must be a SHA-256"),
    (("p1", "add", "Org4MSP", "org4", DEF, UPD, ""), "reason must be"),
    (("p1", "add", "Org2MSP", "org2", DEF, UPD, "x"), "Org2MSP is already a member"),
    (("p1", "remove", "Org9MSP", "org9", DEF, UPD, "x"), "Org9MSP is not a member"),
    (("bad id!", "add", "Org4MSP", "org4", DEF, UPD, "x"), "proposal_id"),
])
def test_bad_proposals_change_nothing(led, args, match):
    led.reject(A(ORGS[0]), "propose_membership", *args, match=match)


def test_only_admins_of_active_members_propose_or_approve(led):
    led.reject(ids.trainer(ORGS[0]), "propose_membership", "p", "add", "Org4MSP", "org4", DEF, UPD, "x",
               match="role 'trainer'")
    led.reject(ids.auditor(ORGS[0]), "propose_membership", "p", "add", "Org4MSP", "org4", DEF, UPD, "x",
               match="auditors are read-only")
    led.reject(A("Org4MSP"), "propose_membership", "p", "add", "Org4MSP", "org4", DEF, UPD, "x",
               match="Org4MSP is not a member")
    _admit(led, by=ORGS[:2])
    led.call(A(ORGS[0]), "propose_membership", "rm-4", "remove", "Org4MSP", "org4", DEF, UPD, "x")
    assert led.call(A("Org4MSP"), "approve_membership", "rm-4", UPD)["status"] == "pending"   # no stake, no weight
