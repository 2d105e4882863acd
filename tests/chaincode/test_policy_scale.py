"""Consortia of many orgs on the contract: the compact stake policy is what the ledger keeps and sets on
keys; a stake change that would leave no compact exact policy is refused and changes nothing."""
import hashlib
import itertools
import random

import pytest

from fabshim.contract import Context
from fedfabric_cc import incentives, policy
from fedfabric_protocol import stakerule
from fedfabric_protocol.spec import Incentives

from . import identities as ids
from .harness import Ledger, init, job_spec

FIFTY = [f"Org{i + 1}MSP" for i in range(50)]
THREE_CLASSES = tuple((100, 200, 300)[i % 3] for i in range(50))   # Org1 100, Org2 200, Org3 300, Org4 100, ...
FOUR_CLASSES = tuple((100, 200, 300, 400)[i % 4] for i in range(50))  # four stake values in groups of 12-13
REFUSED = "cannot compile endorsement policy: no exact endorsement policy of at most 65536 bytes"


def _fifty(stakes=THREE_CLASSES) -> Ledger:
    led = Ledger()
    init(led, stakes=stakes, balances=(0,) * 50, orgs=FIFTY)
    return led


def test_fifty_equal_orgs_keep_one_outof_on_the_ledger_and_on_job_keys():
    led = _fifty((100,) * 50)
    pol = led.call(ids.auditor("Org7MSP"), "get_policy")
    assert pol["classes"] == [{"stake": 100, "orgs": sorted(FIFTY)}] and pol["vectors"] == [[34]]
    assert pol["policy"].startswith("OutOf(34,") and pol["size"]["policy_bytes"] < 1000
    assert pol["lifecycle"] == {"threshold": [2, 3], "classes": pol["classes"]}
    led.call(ids.admin("Org1MSP"), "create_job", job_spec(participants=FIFTY[:3]))
    jk = led.stub.create_composite_key("job", ["job1"])
    env = led.stub.vparams[jk]
    assert env == bytes.fromhex(pol["envelope_hex"])
    assert policy.envelope_satisfied(env, FIFTY[:34]) and not policy.envelope_satisfied(env, FIFTY[:33])


def test_fifty_orgs_in_three_stake_classes_fit():
    led = _fifty()
    pol = led.call(ids.auditor("Org1MSP"), "get_policy")
    assert [c["stake"] for c in pol["classes"]] == [300, 200, 100]
    assert pol["size"]["policy_bytes"] <= policy.MAX_POLICY_BYTES >= pol["size"]["envelope_bytes"]
    assert pol == {**policy.compile_policy(dict(zip(FIFTY, THREE_CLASSES)), 2, 3), "lifecycle": pol["lifecycle"]}


def test_fifty_orgs_in_four_equal_stake_groups_fit_in_the_envelope():
    """The envelope -- what Fabric keeps and evaluates -- stays under 64 KB; its text form is longer than
    one command-line argument, which is why the lifecycle takes the envelope (network/lifecycle.py)."""
    led = _fifty(FOUR_CLASSES)
    pol = led.call(ids.auditor("Org1MSP"), "get_policy")
    assert [c["stake"] for c in pol["classes"]] == [400, 300, 200, 100]
    assert pol["size"]["envelope_bytes"] <= policy.MAX_POLICY_BYTES < pol["size"]["policy_bytes"]
    env = bytes.fromhex(pol["envelope_hex"])
    stakes = dict(zip(FIFTY, FOUR_CLASSES))
    heavy = sorted(FIFTY, key=lambda m: (-stakes[m], m))
    for k in range(15, 30):                               # the first k by stake: wins exactly at 2/3
        assert policy.envelope_satisfied(env, heavy[:k]) == stakerule.wins(stakes, 2, 3, heavy[:k])


def test_fifty_orgs_of_four_close_stakes_fold_into_counts():
    """97/101/103/107: most remainders depend only on how many orgs sign, each one OutOf over the classes
    left; exact (every prefix by stake, and random sets in random order, against the stake sum)."""
    stakes = dict(zip(FIFTY, ((97, 101, 103, 107)[i % 4] for i in range(50))))
    pol = policy.compile_policy(stakes, 2, 3)
    assert pol["size"]["envelope_bytes"] < 32 * 1024 and len(pol["classes"]) == 4
    env = bytes.fromhex(pol["envelope_hex"])
    heavy = sorted(FIFTY, key=lambda m: (-stakes[m], m))
    light = heavy[::-1]
    for k in range(30, 38):
        for orgs in (heavy[:k], light[:k]):
            assert policy.envelope_satisfied(env, orgs) == stakerule.wins(stakes, 2, 3, orgs)
    rng = random.Random(3)
    for _ in range(500):
        orgs = rng.sample(FIFTY, rng.randint(30, 38))
        assert policy.envelope_satisfied(env, orgs) == stakerule.wins(stakes, 2, 3, orgs)


def test_a_count_cover_lets_branches_ignore_large_sets():
    """531/619/661/885: at several nodes any k of the classes left hold the remainder; "at least k of
    them" covers those sets and the branches below stay exact for fewer orgs only -- a 48 KB nested
    envelope where branching alone needs 72 KB (runs of bands do it in 33 KB, which the contract keeps).
    The nested form is exact at every count vector near the threshold."""
    values = (531, 619, 661, 885)
    stakes = dict(zip(FIFTY, (values[i % 4] for i in range(50))))
    pol = policy.compile_policy(stakes, 2, 3)
    assert pol["size"]["envelope_bytes"] < 34_000 and pol["vectors_complete"]
    classes = stakerule.stake_classes(stakes)
    total = sum(stakes.values())
    nested = []
    for order in itertools.permutations(range(4)):
        root, _ = policy._nester(classes, order, 3, 10**6)(2 * total)
        nested.append(policy.to_envelope(policy._expand(root, classes, 10**6)))
    env = min(nested, key=len)
    assert len(env) <= policy.MAX_POLICY_BYTES
    rng = random.Random(4)
    near = [v for v in itertools.product(*(range(len(o) + 1) for _, o in classes))
            if abs(3 * sum(c * s for c, (s, _) in zip(v, classes)) - 2 * total) <= 3 * 531]
    checked = 0
    for v in rng.sample(near, 400):
        orgs = [m for (_, o), c in zip(classes, v) for m in rng.sample(o, c)]
        rng.shuffle(orgs)
        assert policy.envelope_satisfied(env, orgs) == stakerule.wins(stakes, 2, 3, orgs), v
        checked += 1
    assert checked == 400


def test_fifty_distinct_but_close_stakes_are_one_outof_and_their_vectors_are_bounded():
    """10000..10049: any 34 orgs hold 2/3, no 33 do, so the policy is OutOf(34, all 50) -- which stands
    for C(50, 34) = 4.9e12 count vectors; the record lists the first MAX_VECTORS and says so."""
    stakes = {m: 10000 + i for i, m in enumerate(FIFTY)}
    pol = policy.compile_policy(stakes, 2, 3)
    assert pol["policy"].startswith("OutOf(34,") and pol["size"]["gates"] == 1
    assert len(pol["vectors"]) == policy.MAX_VECTORS and pol["vectors_complete"] is False
    assert all(sum(v) == 34 for v in pol["vectors"])
    assert policy.compile_policy(dict(zip(FIFTY, FOUR_CLASSES)), 2, 3)["vectors_complete"] is True


def test_init_with_too_many_distinct_stakes_is_refused():
    stakes = tuple(100 * (i + 1) for i in range(20))
    err = Ledger().reject(ids.admin("Org1MSP"), "init_consortium",
                          [{"msp_id": m, "stake": s} for m, s in zip(FIFTY, stakes)], "2/3", match=REFUSED)
    assert "20 staked orgs in 20 distinct stake classes" in err.message and "fewer distinct stake values" in err.message


def test_a_transfer_that_breaks_compactness_is_refused_and_changes_nothing():
    led = _fifty(FOUR_CLASSES)
    led.call(ids.admin("Org1MSP"), "create_job", job_spec(participants=FIFTY[:3]))
    before = led.call(ids.auditor("Org1MSP"), "get_policy")
    # 100 -> 90 and 200 -> 210: six stake classes, no exact policy under 64 KB
    led.reject(ids.admin("Org1MSP"), "transfer_stake", "Org2MSP", 10, match=REFUSED)   # ledger unchanged
    assert led.call(ids.auditor("Org1MSP"), "get_policy") == before
    assert led.call(ids.auditor("Org1MSP"), "get_org", "Org1MSP")["stake"] == 100
    # moving a whole class step keeps four classes: applied, policy recompiled and set on the job key
    out = led.call(ids.admin("Org1MSP"), "transfer_stake", "Org2MSP", 100)
    assert (out["from"]["stake"], out["to"]["stake"]) == (0, 300)
    after = led.call(ids.auditor("Org1MSP"), "get_policy")
    assert after != before and "Org1MSP" not in stakerule.rule_orgs(after)
    assert after["lifecycle"] == before["lifecycle"]       # the chaincode definition did not change
    jk = led.stub.create_composite_key("job", ["job1"])
    assert led.stub.vparams[jk] == bytes.fromhex(after["envelope_hex"])


def test_a_stake_proposal_that_breaks_compactness_is_refused_when_proposed():
    led = _fifty(FOUR_CLASSES)
    led.reject(ids.admin("Org1MSP"), "propose_stake_adjustment", "p1", "Org1MSP", 1, "one more", match=REFUSED)
    p = led.call(ids.admin("Org1MSP"), "propose_stake_adjustment", "p1", "Org1MSP", 100, "one class up")
    assert p["status"] == "pending"


def _approve_to_quorum(led: Ledger, pid: str, proposer: str) -> str:
    """Admins approve ``pid`` in stake order until the quorum; the last approver (whose approval applies
    it, or is refused). Every approval before it leaves the proposal pending."""
    stakes = {o["msp_id"]: o["stake"] for o in led.call(ids.auditor(proposer), "list_orgs")}
    approvers = [proposer]
    for m in sorted(stakes, key=lambda m: (-stakes[m], m)):
        if m == proposer:
            continue
        approvers.append(m)
        if stakerule.wins(stakes, 2, 3, approvers):
            return m
        assert led.call(ids.admin(m), "approve_stake_adjustment", pid)["status"] == "pending"
    pytest.fail("never reached the quorum")


def test_an_approval_whose_change_no_longer_fits_is_refused_and_the_proposal_stays_pending():
    led = _fifty(FOUR_CLASSES)
    p = led.call(ids.admin("Org2MSP"), "propose_stake_adjustment", "p1", "Org2MSP", -10, "a smaller study")
    assert p["status"] == "pending"                        # Org2 200 -> 190 alone: fits
    led.call(ids.admin("Org1MSP"), "propose_stake_adjustment", "p0", "Org1MSP", -10, "another one")
    last = _approve_to_quorum(led, "p0", "Org1MSP")        # meanwhile Org1 100 -> 90: fits, applied
    assert led.call(ids.admin(last), "approve_stake_adjustment", "p0")["status"] == "applied"
    last = _approve_to_quorum(led, "p1", "Org2MSP")        # Org1 90 and Org2 190: six classes, no fit
    led.reject(ids.admin(last), "approve_stake_adjustment", "p1", match=REFUSED)
    prop = led.call(ids.auditor("Org1MSP"), "key_history", "stakeprop", ["p1"])[0]["value"]
    assert prop["status"] == "pending" and last not in prop["approvals"]
    assert [led.call(ids.auditor("Org1MSP"), "get_org", m)["stake"] for m in ("Org1MSP", "Org2MSP")] == [90, 200]


def _settle(led: Ledger, inc: Incentives, r: int, absent: list[str], paid: str = "Org1MSP") -> dict:
    orgs = {o["msp_id"]: o for o in led.call(ids.auditor("Org1MSP"), "list_orgs")}
    with led.stub.transaction(ids.admin("Org1MSP"), seconds=led.t):
        return incentives.settle(Context(led.stub), inc, "job1", r, orgs, {paid: 1}, absent)


def _org(led: Ledger, msp: str) -> dict:
    return led.call(ids.auditor("Org1MSP"), "get_org", msp)


def test_a_slash_with_no_compact_policy_is_owed_then_taken_by_whole_levels():
    """At the limit (four stake values, 50 orgs) a 60 cut of Org3 (300) would add a class: it is owed,
    its stake and weight stay. The next 60 makes 120 owed: Org3 drops to the next level down (200,
    held by others), 100 taken and 20 still owed; never more than it owes, and the round closes."""
    led = _fifty(FOUR_CLASSES)
    inc = Incentives(reward_per_round=100, slash_absent=60)
    out = _settle(led, inc, 1, ["Org3MSP"])
    assert out["slashed"] == {} and out["owed"] == {"Org3MSP": 60} and "distinct stake classes" in out["slash_deferred"]
    assert out["policy"] is None and out["envelope"] is None           # no weight moved: the policy stays
    org = _org(led, "Org3MSP")
    assert (org["stake"], org["slash_owed"]) == (300, 60) and _org(led, "Org1MSP")["balance"] == 100
    out = _settle(led, inc, 2, ["Org3MSP"], paid="Org2MSP")
    assert out["slashed"] == {"Org3MSP": 100} and out["owed"] == {"Org3MSP": 20} and out["slash_deferred"]
    assert out["policy"]["classes"] == 4                                  # Org3 joined the 200s: no class added
    pol = led.call(ids.auditor("Org1MSP"), "get_policy")
    assert "Org3MSP" in next(c["orgs"] for c in pol["classes"] if c["stake"] == 200)
    org = _org(led, "Org3MSP")
    assert (org["stake"], org["slash_owed"]) == (200, 20)
    history = [(e["field"], e["delta"], e["reason"]) for e in
               led.call(ids.auditor("Org1MSP"), "org_history", "Org3MSP") if e["reason"] == "round-settlement"]
    assert sorted(history) == sorted([("slash_owed", 60, "round-settlement"), ("stake", -100, "round-settlement"),
                                      ("slash_owed", -40, "round-settlement")])
    report = led.call(ids.auditor("Org1MSP"), "org_report", "Org3MSP")
    assert report["slashed"] == 100 and report["org"]["slash_owed"] == 20


# seven stake values after 200 rounds of small slashes (found by benchmarks/slash_drift.py): Org1 100 -> 90
# and Org50 300 -> 290 together leave no compact policy, and neither do their whole cuts
DRIFTED = (100, 290, 100, 300, 90, 300, 90, 290, 90, 300, 100, 300, 100, 290, 100, 300, 90, 300, 100, 300, 100, 300,
           100, 300, 80, 300, 100, 290, 90, 300, 90, 280, 100, 300, 100, 300, 90, 300, 90, 300, 100, 290, 100, 300,
           100, 300, 100, 300, 70, 300)


def test_level_drops_that_do_not_fit_together_are_taken_one_at_a_time():
    led = _fifty(DRIFTED)
    out = _settle(led, Incentives(slash_absent=10), 1, ["Org1MSP", "Org50MSP"])
    assert out["slashed"] == {"Org1MSP": 10} and out["owed"] == {"Org50MSP": 10} and out["slash_deferred"]
    assert [(_org(led, m)["stake"], _org(led, m)["slash_owed"]) for m in ("Org1MSP", "Org50MSP")] == [(90, 0),
                                                                                                   (300, 10)]
    with pytest.raises(policy.PolicyError):              # the two drops together, which the contract tried first
        policy.compile_policy({**dict(zip(FIFTY, DRIFTED)), "Org1MSP": 90, "Org50MSP": 290}, 2, 3)


def test_owed_stake_cannot_be_transferred_away():
    led = _fifty(FOUR_CLASSES)
    _settle(led, Incentives(slash_absent=60), 1, ["Org3MSP"])
    led.reject(ids.admin("Org3MSP"), "transfer_stake", "Org4MSP", 250, match="60 of it owed to slashing")
    assert (_org(led, "Org3MSP")["stake"], _org(led, "Org4MSP")["stake"]) == (300, 400)
    # what is not owed can move: 100 to Org1 (100 -> 200) leaves Org3 at 200, the classes unchanged
    led.call(ids.admin("Org3MSP"), "transfer_stake", "Org1MSP", 100)
    assert (_org(led, "Org3MSP")["stake"], _org(led, "Org3MSP")["slash_owed"]) == (200, 60)


def test_a_burn_by_governance_leaves_an_org_owing_at_most_its_stake():
    led = _fifty(FOUR_CLASSES)
    _settle(led, Incentives(slash_absent=60), 1, ["Org3MSP"])
    led.call(ids.admin("Org1MSP"), "propose_stake_adjustment", "p1", "Org3MSP", -200, "a smaller study")
    led.call(ids.admin(_approve_to_quorum(led, "p1", "Org1MSP")), "approve_stake_adjustment", "p1")
    assert (_org(led, "Org3MSP")["stake"], _org(led, "Org3MSP")["slash_owed"]) == (100, 60)    # still owed
    led.call(ids.admin("Org1MSP"), "propose_stake_adjustment", "p2", "Org3MSP", -100, "leaves the studies")
    led.call(ids.admin(_approve_to_quorum(led, "p2", "Org1MSP")), "approve_stake_adjustment", "p2")
    assert (_org(led, "Org3MSP")["stake"], _org(led, "Org3MSP")["slash_owed"]) == (0, 0)
    assert [(e["field"], e["delta"], e["reason"]) for e in led.call(ids.auditor("Org1MSP"), "org_history", "Org3MSP")
            if e["field"] == "slash_owed"] == [("slash_owed", 60, "round-settlement"),
                                               ("slash_owed", -60, "adjustment")]


def test_a_debt_is_taken_whole_once_the_stake_vector_allows_it():
    """Owed stake plus a new cut is taken in one piece when that leaves a compact policy (Org3 300 with
    60 owed and a new 100: 140, a fifth class of one org, fits; 230 would not)."""
    led = _fifty(FOUR_CLASSES)
    _settle(led, Incentives(slash_absent=60), 1, ["Org3MSP"])
    out = _settle(led, Incentives(slash_absent=100), 2, ["Org3MSP"])
    assert out["slashed"] == {"Org3MSP": 160} and out["owed"] == {} and out["slash_deferred"] is None
    assert (_org(led, "Org3MSP")["stake"], _org(led, "Org3MSP")["slash_owed"]) == (140, 0)
    assert {"stake": 140, "orgs": ["Org3MSP"]} in led.call(ids.auditor("Org1MSP"), "get_policy")["classes"]


def test_the_lowest_level_drops_to_zero_only_when_it_owes_its_whole_stake():
    led = _fifty(FOUR_CLASSES)
    out = _settle(led, Incentives(slash_absent=60), 1, ["Org1MSP", "Org5MSP"])       # both 100: 40 is no level
    assert out["slashed"] == {} and out["owed"] == {"Org1MSP": 60, "Org5MSP": 60}
    out = _settle(led, Incentives(slash_absent=60), 2, ["Org1MSP"])                   # owes 120, capped at 100
    assert out["slashed"] == {"Org1MSP": 100} and out["owed"] == {}
    assert (_org(led, "Org1MSP")["stake"], _org(led, "Org1MSP")["slash_owed"]) == (0, 0)
    assert _org(led, "Org5MSP")["slash_owed"] == 60


def test_a_stake_change_names_a_large_policy_by_digest_not_by_text():
    """The event of a stake change in a 50-org consortium carries the new policy's summary (threshold,
    classes, envelope digest and size), not its ~74 KB text; get_policy has the text."""
    led = _fifty(FOUR_CLASSES)
    led.call(ids.admin("Org1MSP"), "transfer_stake", "Org2MSP", 100)
    moved = led.last_event.json()["policy"]
    pol = led.call(ids.auditor("Org1MSP"), "get_policy")
    assert "text" not in moved and len(pol["policy"]) > 50_000 and len(led.last_event.payload) < 2_000
    assert moved == {"threshold": [2, 3], "classes": 4, "envelope_bytes": pol["size"]["envelope_bytes"],
                     "envelope_sha256": hashlib.sha256(bytes.fromhex(pol["envelope_hex"])).hexdigest()}
