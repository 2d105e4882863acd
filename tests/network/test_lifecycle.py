"""Deploy retry after a partial failure: orgs whose approval is already in place are not asked again,
and Fabric's 'unchanged content' refusal of a repeated approval counts as approved. A site holding
some orgs only approves for them, joins a definition committed without them, and commits once a
majority of the channel's orgs approved."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import grpc
import pytest
from fabric_protos.peer import policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2

from fedfabric.ledger import EndorseError, ErrorDetail
from fedfabric.network import deploy, lifecycle, policydsl
from fedfabric.network.deploy import ChaincodeDeployment
from fedfabric.network.fabricbin import FabricBinaryError, FabricInstall
from fedfabric.network.layout import Layout

from fedfabric_cc import policy
from fedfabric_cc.policy import envelope_satisfied

from ..conftest import test_config

CONFIG = test_config(20000)
DEP = ChaincodeDeployment(name="echo", version="1", command=("true",), policy="OR('Org1MSP.peer')")
PKGS = {"org1": "echo_1:aaa", "org2": "echo_1:bbb", "org3": "echo_1:ccc"}


class FakeLifecycle:
    """Records approve/commit; answers committed/checkcommitreadiness/queryapproved from its fields."""

    def __init__(self, ready: dict[str, bool], approved: dict[str, str | None], committed: dict | None = None,
                 refuse_committed: bool = False):
        self.ready, self.approved_pkgs, self.committed_def = ready, approved, committed
        self.refuse_committed = refuse_committed   # the committed definition differs from the site's
        self.calls: list[tuple] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(lifecycle, "committed", lambda *a, **k: self.committed_def)
        monkeypatch.setattr(lifecycle, "commit_readiness", self.commit_readiness)
        monkeypatch.setattr(lifecycle, "approved", self.approved)
        monkeypatch.setattr(lifecycle, "approve", self.approve)
        monkeypatch.setattr(lifecycle, "commit", lambda *a, **k: self.calls.append(
            ("commit", k["sequence"], k["committer"].name, [o.name for o in k["endorsers"]])))

    def commit_readiness(self, fabric, config, layout, org, **definition) -> dict[str, bool]:
        self.calls.append(("checkcommitreadiness", definition["sequence"]))
        return self.ready

    def approved(self, fabric, config, layout, org, name, sequence) -> dict | None:
        pkg = self.approved_pkgs.get(org.msp_id)
        return None if pkg is None else {"sequence": sequence, "source": {"Type": {"LocalPackage": {"package_id": pkg}}}}

    def approve(self, fabric, config, layout, org, **kw) -> bool:
        committed = self.committed_def and kw["sequence"] == self.committed_def["sequence"]
        if committed and self.refuse_committed:
            raise lifecycle.LifecycleError("approveformyorg as org1's admin failed: failed to endorse: "
                                           "failed to invoke backing implementation of "
                                           "'ApproveChaincodeDefinitionForMyOrg': attempted to redefine the current "
                                           "committed sequence (2) for namespace echo with different parameters: "
                                           "expected Collections 'a' does not match passed 'b'")
        self.calls.append(("approve", org.name, kw["sequence"], kw["pkg_id"]))
        if not committed:
            self.ready[org.msp_id] = True
        return True


def _run(tmp_path: Path, fake: FakeLifecycle, monkeypatch, previous: str | None = None,
         local: list[str] | None = None) -> tuple:
    fake.install(monkeypatch)
    layout = Layout(tmp_path, CONFIG)
    notes: list[str] = []
    orgs = [CONFIG.org(n) for n in local] if local else None
    pkgs = {o.name: PKGS[o.name] for o in orgs} if orgs else PKGS
    out = deploy.run_lifecycle(FabricInstall(tmp_path, tmp_path), CONFIG, layout, DEP, pkgs, previous,
                               report=notes.append, local=orgs)
    return out, notes


ALL = {"Org1MSP": True, "Org2MSP": True, "Org3MSP": True}


def test_fresh_deploy_approves_every_org_then_commits(tmp_path, monkeypatch) -> None:
    fake = FakeLifecycle({"Org1MSP": False, "Org2MSP": False, "Org3MSP": False}, {})
    (sequence, _, changed), _ = _run(tmp_path, fake, monkeypatch)
    assert (sequence, changed) == (1, True)
    assert [c for c in fake.calls if c[0] == "approve"] == [
        ("approve", "org1", 1, "echo_1:aaa"), ("approve", "org2", 1, "echo_1:bbb"), ("approve", "org3", 1, "echo_1:ccc")]
    assert fake.calls[-1] == ("commit", 1, "org1", ["org1", "org2", "org3"])


def test_retry_skips_the_org_that_already_approved(tmp_path, monkeypatch) -> None:
    fake = FakeLifecycle({"Org1MSP": True, "Org2MSP": False, "Org3MSP": False}, {"Org1MSP": "echo_1:aaa"},
                         committed={"sequence": 3, "approvals": dict(ALL)})
    (sequence, _, _), notes = _run(tmp_path, fake, monkeypatch, previous="an older fingerprint")
    assert sequence == 4
    assert [c[1] for c in fake.calls if c[0] == "approve"] == ["org2", "org3"]
    assert notes == ["org1 already approved 'echo' sequence 4: not asked again"]
    assert fake.calls[-1] == ("commit", 4, "org1", ["org1", "org2", "org3"])


def test_a_site_of_one_org_approves_for_it_and_waits_for_a_majority(tmp_path, monkeypatch) -> None:
    fake = FakeLifecycle({"Org1MSP": False, "Org2MSP": False, "Org3MSP": False}, {})
    (sequence, _, changed), notes = _run(tmp_path, fake, monkeypatch, local=["org2"])
    assert (sequence, changed) == (1, True)
    assert [c[1:] for c in fake.calls if c[0] == "approve"] == [("org2", 1, "echo_1:bbb")]
    assert not [c for c in fake.calls if c[0] == "commit"]
    assert notes[-1] == ("'echo' sequence 1 approved by 1 of 3 orgs: not committed yet (a majority must "
                         "approve; waiting for Org1MSP, Org3MSP)")


def test_the_site_completing_a_majority_commits_endorsed_by_the_approvers(tmp_path, monkeypatch) -> None:
    fake = FakeLifecycle({"Org1MSP": True, "Org2MSP": False, "Org3MSP": False}, {"Org1MSP": "echo_1:aaa"})
    _run(tmp_path, fake, monkeypatch, local=["org3"])
    assert fake.calls[-1] == ("commit", 1, "org3", ["org1", "org3"])


def test_an_org_joining_later_approves_the_committed_definition(tmp_path, monkeypatch) -> None:
    fake = FakeLifecycle({}, {}, committed={"sequence": 2, "approvals": {"Org1MSP": True, "Org2MSP": True}})
    (sequence, _, changed), notes = _run(tmp_path, fake, monkeypatch, local=["org3"])
    assert (sequence, changed) == (2, True)
    assert fake.calls == [("approve", "org3", 2, "echo_1:ccc")]
    assert notes == ["org3 approved the committed 'echo' sequence 2"]


def test_a_committed_definition_that_differs_needs_the_next_sequence(tmp_path, monkeypatch) -> None:
    fake = FakeLifecycle({"Org1MSP": False, "Org2MSP": False, "Org3MSP": False}, {}, refuse_committed=True,
                         committed={"sequence": 2, "approvals": {"Org1MSP": True, "Org2MSP": True}})
    (sequence, _, _), _ = _run(tmp_path, fake, monkeypatch)
    assert sequence == 3
    assert [c[1:] for c in fake.calls if c[0] == "approve"] == [
        ("org1", 3, "echo_1:aaa"), ("org2", 3, "echo_1:bbb"), ("org3", 3, "echo_1:ccc")]
    assert fake.calls[-1][:2] == ("commit", 3)


def test_an_approval_of_another_package_is_renewed(tmp_path, monkeypatch) -> None:
    """Same definition parameters (readiness true) but the org approved an older package id."""
    fake = FakeLifecycle({"Org1MSP": True, "Org2MSP": True, "Org3MSP": True},
                         {"Org1MSP": "echo_1:old", "Org2MSP": "echo_1:bbb", "Org3MSP": "echo_1:ccc"})
    _run(tmp_path, fake, monkeypatch)
    assert [c[1:] for c in fake.calls if c[0] == "approve"] == [("org1", 1, "echo_1:aaa")]


def test_unchanged_definition_does_nothing(tmp_path, monkeypatch) -> None:
    fake = FakeLifecycle({}, {}, committed={"sequence": 2})
    fp = deploy.definition_fingerprint(DEP, DEP.endorsement_policy(CONFIG), PKGS)
    (sequence, fingerprint, changed), _ = _run(tmp_path, fake, monkeypatch, previous=fp)
    assert (sequence, fingerprint, changed) == (2, fp, False) and fake.calls == []


class FailingFabric(FabricInstall):
    """A FabricInstall whose CLI calls fail with a given message."""

    message = ""

    def run(self, name, args, env=None, timeout=120, what=None):  # type: ignore[override]
        raise FabricBinaryError(f"{what} failed (exit 1): " + self.message)


class FakeLifecycleContract:
    """``_lifecycle`` as the Gateway shows it: records each call's function, argument bytes and endorsing
    orgs; ``refuse`` is the peer's answer to every submit."""

    def __init__(self, refuse: str | None = None, readiness: dict[str, bool] | None = None,
                 refusals: int = 1_000_000) -> None:
        self.refuse, self.readiness, self.calls, self.refusals = refuse, readiness or {}, [], refusals

    def submit(self, function, args=(), endorsing_orgs=None, **kw):
        self.calls.append((function, list(args), endorsing_orgs))
        if self.refuse and self.refusals > 0:
            self.refusals -= 1
            raise EndorseError("failed to endorse", grpc.StatusCode.ABORTED,
                               [ErrorDetail("127.0.0.1:17051", "Org1MSP", f"chaincode response 500, {self.refuse}")],
                               tx_id="tx9")

    def evaluate(self, function, args=(), **kw):
        self.calls.append((function, list(args), None))
        return lifecycle_pb2.CheckCommitReadinessResult(approvals=self.readiness).SerializeToString()


@pytest.fixture
def lc(monkeypatch: pytest.MonkeyPatch):
    def use(fake: FakeLifecycleContract) -> FakeLifecycleContract:
        monkeypatch.setattr(lifecycle, "_lifecycle_contract", lambda layout, org: nullcontext(fake))
        return fake
    return use


def _approve(tmp_path, **kw) -> bool:
    args = dict(name="echo", version="1", sequence=2, policy="OR('Org1MSP.peer')", pkg_id="echo_1:aaa")
    return lifecycle.approve(FabricInstall(tmp_path, tmp_path), CONFIG, Layout(tmp_path, CONFIG), CONFIG.orgs[0],
                             **{**args, **kw})


def test_an_approval_carries_the_policy_as_an_envelope_and_the_collections_as_protos(tmp_path, lc) -> None:
    fake = lc(FakeLifecycleContract())
    coll = deploy.members_collection(CONFIG, "updates", 5)
    policy = "OutOf(2,'Org1MSP.peer','Org2MSP.peer','Org3MSP.peer')"
    assert _approve(tmp_path, policy=policy, collections=[coll]) is True
    [(function, [raw], orgs)] = fake.calls
    assert function == "ApproveChaincodeDefinitionForMyOrg" and orgs == ["Org1MSP"]
    a = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs.FromString(raw)
    assert (a.name, a.version, a.sequence, a.endorsement_plugin, a.validation_plugin, a.init_required) == (
        "echo", "1", 2, "escc", "vscc", False)
    assert a.source.local_package.package_id == "echo_1:aaa"
    vp = policy_pb2.ApplicationPolicy.FromString(a.validation_parameter)
    env = vp.signature_policy.SerializeToString(deterministic=True)
    assert env == policydsl.envelope(policy)
    assert envelope_satisfied(env, ["Org1MSP", "Org3MSP"]) and not envelope_satisfied(env, ["Org2MSP"])
    [c] = a.collections.config
    s = c.static_collection_config
    assert (s.name, s.block_to_live, s.required_peer_count, s.maximum_peer_count, s.member_only_read,
            s.member_only_write) == ("updates", 5, 0, 0, True, True)
    members = s.member_orgs_policy.signature_policy.SerializeToString(deterministic=True)
    assert all(envelope_satisfied(members, [m]) for m in ("Org1MSP", "Org2MSP", "Org3MSP"))


def test_a_policy_longer_than_a_command_line_argument_is_approved(tmp_path, lc) -> None:
    fake = lc(FakeLifecycleContract())
    values = [400] * 12 + [500] * 13 + [700] * 12 + [900] * 13            # a 63.5 KB envelope, 3.5x as text
    stakes = {f"Org{i + 1}MSP": v for i, v in enumerate(values)}
    compiled = policy.compile_policy(stakes, 2, 3)
    assert len(compiled["policy"]) > 128 * 1024                              # the peer CLI's per-argument cap
    assert _approve(tmp_path, policy=compiled["policy"]) is True
    a = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs.FromString(fake.calls[0][1][0])
    env = policy_pb2.ApplicationPolicy.FromString(a.validation_parameter).signature_policy
    assert policy.decode_envelope(env.SerializeToString()) == policy.decode_envelope(bytes.fromhex(compiled["envelope_hex"]))


def test_unchanged_reapproval_counts_as_approved(tmp_path, lc) -> None:
    lc(FakeLifecycleContract(refuse="failed to invoke backing implementation of 'ApproveChaincodeDefinitionForMyOrg': "
                                    "attempted to redefine uncommitted sequence (2) for namespace echo with unchanged "
                                    "content"))
    assert _approve(tmp_path) is False


@pytest.mark.parametrize("message", [
    "failed to invoke backing implementation of 'ApproveChaincodeDefinitionForMyOrg': attempted to redefine the "
    "current committed sequence (1) for namespace echo with different parameters",
    "access denied: channel [fl] creator org [Org1MSP]",
])
def test_other_approval_errors_still_fail(tmp_path, lc, message) -> None:
    lc(FakeLifecycleContract(refuse=message))
    with pytest.raises(lifecycle.LifecycleError, match="approveformyorg as org1's admin failed") as ei:
        _approve(tmp_path)
    assert "tx9" in str(ei.value) and "Org1MSP" in str(ei.value) and message[:30] in str(ei.value)


def test_a_commit_waits_until_the_gateway_knows_a_peer_of_every_endorsing_org(tmp_path, lc, monkeypatch) -> None:
    monkeypatch.setattr(lifecycle.time, "sleep", lambda s: None)
    args = dict(name="echo", version="1", sequence=1, policy="OR('Org1MSP.peer')")
    fake = lc(FakeLifecycleContract(refuse="failed to find any endorsing peers for org(s): Org3MSP", refusals=3))
    lifecycle.commit(FabricInstall(tmp_path, tmp_path), CONFIG, Layout(tmp_path, CONFIG), committer=CONFIG.orgs[0],
                     endorsers=list(CONFIG.orgs), **args)
    assert len(fake.calls) == 4                        # three times not yet known, then committed
    lc(FakeLifecycleContract(refuse="failed to find any endorsing peers for org(s): Org3MSP"))
    monkeypatch.setattr(lifecycle, "PEERS_KNOWN_WAIT_S", 0.0)
    with pytest.raises(lifecycle.LifecycleError, match="chaincode commit as org1's admin failed.*Org3MSP"):
        lifecycle.commit(FabricInstall(tmp_path, tmp_path), CONFIG, Layout(tmp_path, CONFIG),
                         committer=CONFIG.orgs[0], endorsers=list(CONFIG.orgs), **args)


def test_readiness_and_commit_go_to_the_lifecycle_chaincode(tmp_path, lc) -> None:
    fake = lc(FakeLifecycleContract(readiness={"Org2MSP": False, "Org1MSP": True}))
    args = dict(name="echo", version="1", sequence=1, policy="OR('Org1MSP.peer')")
    layout = Layout(tmp_path, CONFIG)
    fabric = FabricInstall(tmp_path, tmp_path)
    assert lifecycle.commit_readiness(fabric, CONFIG, layout, CONFIG.orgs[0], **args) == {
        "Org1MSP": True, "Org2MSP": False}
    lifecycle.commit(fabric, CONFIG, layout, committer=CONFIG.orgs[0], endorsers=list(CONFIG.orgs[:2]), **args)
    (f1, [r1], _), (f2, [r2], orgs) = fake.calls
    assert f1 == "CheckCommitReadiness" and f2 == "CommitChaincodeDefinition" and orgs == ["Org1MSP", "Org2MSP"]
    ready, com = lifecycle_pb2.CheckCommitReadinessArgs.FromString(r1), lifecycle_pb2.CommitChaincodeDefinitionArgs.FromString(r2)
    assert ready.validation_parameter == com.validation_parameter and not com.HasField("collections")


def test_nothing_approved_yet_is_none(tmp_path) -> None:
    FailingFabric.message = ("Error: query failed with status: 500 - failed to invoke backing implementation of "
                             "'QueryApprovedChaincodeDefinition': could not fetch approved chaincode definition "
                             "(name: 'echo', sequence: '1') on channel 'fl'")
    assert lifecycle.approved(FailingFabric(tmp_path, tmp_path), CONFIG, Layout(tmp_path, CONFIG), CONFIG.orgs[0],
                              "echo", 1) is None
    assert lifecycle.approved_package_id(None) is None
    assert lifecycle.approved_package_id({"source": {"Type": {"LocalPackage": {"package_id": "p:1"}}}}) == "p:1"


def test_cli_json_is_found_between_log_lines() -> None:
    assert lifecycle._json('2024 WARN something\n{"approvals": {"Org1MSP": true}}\n2024 WARN after') == {
        "approvals": {"Org1MSP": True}}
