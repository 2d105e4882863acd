"""Which orgs the client asks to endorse: the smallest coalition, or every org for a private payload,
falling back to the coalition when some org's peer cannot endorse."""
from __future__ import annotations

import json

import grpc
import pytest

from fedfabric.client import FedFabricClient, Rejected
from fedfabric.ledger import EndorseError
from fedfabric.ledger.contract import SubmitResult
from fedfabric.ledger.errors import ErrorDetail

CLASSES = [{"stake": 100, "orgs": ["Org1MSP", "Org2MSP", "Org3MSP"]}]
POLICY = {"threshold": [2, 3], "classes": CLASSES, "vectors": [[2]],
          "lifecycle": {"threshold": [2, 3], "classes": CLASSES}}


class Contract:
    """Records every submit's endorsers; ``down`` orgs' peers cannot endorse, ``refuse`` is a contract 'no'."""

    def __init__(self, down=(), refuse: str | None = None, policy: dict = POLICY) -> None:
        self.asked: list[list[str] | None] = []
        self.down, self.refuse, self.policy = set(down), refuse, policy

    def evaluate(self, fn, args=()):
        assert fn == "get_policy"
        return json.dumps(self.policy).encode()

    def submit(self, fn, args=(), transient=None, endorsing_orgs=None, **kw):
        self.asked.append(endorsing_orgs)
        if self.refuse:
            raise EndorseError("failed to endorse", grpc.StatusCode.ABORTED,
                               [ErrorDetail("peer0.org2:7051", "Org2MSP", f"chaincode response 409, {self.refuse}")])
        if self.down & set(endorsing_orgs or ()):
            raise EndorseError("failed to endorse", grpc.StatusCode.ABORTED,
                               [ErrorDetail("peer0.org3:7051", "Org3MSP", "rpc error: code = Unavailable desc = "
                                            "connection refused")])
        return SubmitResult(b"{}", "tx1", 5, "VALID")


META = {"sha256": "0" * 64}


def test_a_payload_is_endorsed_by_every_org_and_other_writes_by_the_smallest_coalition():
    c = Contract()
    cl = FedFabricClient(c, "Org1MSP")
    cl.submit_update("j", 1, META, b"\0" * 8)
    cl.submit_update("j", 1, META, None)        # payload node to node: nothing for the peers to store
    cl.finalize_round("j", 1)
    assert c.asked == [["Org1MSP", "Org2MSP", "Org3MSP"], ["Org1MSP", "Org2MSP"], ["Org1MSP", "Org2MSP"]]


def test_an_org_whose_peer_is_down_leaves_the_payload_to_the_coalition():
    c = Contract(down={"Org3MSP"})
    w = FedFabricClient(c, "Org1MSP", retry_delay=0).submit_update("j", 1, META, b"\0" * 8)
    assert w.tx_id == "tx1" and c.asked == [["Org1MSP", "Org2MSP", "Org3MSP"], ["Org1MSP", "Org2MSP"]]


def test_a_contract_refusal_is_not_retried_with_fewer_orgs():
    c = Contract(refuse="update already submitted")
    with pytest.raises(Rejected) as ei:
        FedFabricClient(c, "Org1MSP").submit_update("j", 1, META, b"\0" * 8)
    assert ei.value.status == 409 and "already submitted" in ei.value.message and len(c.asked) == 1


def test_a_lifecycle_rule_that_differs_from_the_stake_in_force_is_met_too():
    # stake moved since deployment: Org3 holds most now, the lifecycle policy still counts orgs equally
    now = {"threshold": [2, 3], "classes": [{"stake": 500, "orgs": ["Org3MSP"]},
                                           {"stake": 100, "orgs": ["Org1MSP", "Org2MSP"]}],
           "lifecycle": {"threshold": [2, 3], "classes": CLASSES}}
    c = Contract(policy=now)
    FedFabricClient(c, "Org1MSP").finalize_round("j", 1)
    FedFabricClient(c, "Org2MSP").finalize_round("j", 1)
    assert c.asked == [["Org1MSP", "Org3MSP"], ["Org2MSP", "Org3MSP"]]


class Lagging(Contract):
    """The first ``lag`` submits find the endorsers at different heights (their results differ)."""

    def __init__(self, lag: int) -> None:
        super().__init__()
        self.lag = lag

    def submit(self, fn, args=(), transient=None, endorsing_orgs=None, **kw):
        if len(self.asked) < self.lag:
            self.asked.append(endorsing_orgs)
            raise EndorseError("failed to endorse", grpc.StatusCode.ABORTED,
                               [ErrorDetail("peer0.org2:7051", "Org2MSP", "ProposalResponsePayloads do not match")])
        return super().submit(fn, args, transient, endorsing_orgs, **kw)


def test_endorsers_that_disagree_are_asked_again_until_they_agree_or_the_retries_end():
    c = Lagging(lag=2)                          # one peer has not committed the last block yet, twice
    w = FedFabricClient(c, "Org1MSP", retry_delay=0).finalize_round("j", 1)
    assert w.tx_id == "tx1" and len(c.asked) == 3
    stuck = Lagging(lag=100)                    # results that never agree are a chaincode fault: raised
    with pytest.raises(Rejected) as ei:
        FedFabricClient(stuck, "Org1MSP", retries=3, retry_delay=0).finalize_round("j", 1)
    assert "ProposalResponsePayloads do not match" in ei.value.message and len(stuck.asked) == 4
