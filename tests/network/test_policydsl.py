"""Fabric's signature policy text read into an envelope: the stake policy's text gives back the policy
the contract compiled, other texts what Fabric's policydsl gives, and malformed text a clear error."""
from __future__ import annotations

import random

import pytest
from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2

from fedfabric.network import policydsl
from fedfabric_cc import policy


def _parsed(text: str) -> policies_pb2.SignaturePolicyEnvelope:
    return policies_pb2.SignaturePolicyEnvelope.FromString(policydsl.envelope(text))


@pytest.mark.parametrize("stakes", [
    {f"Org{i}MSP": 100 for i in range(1, 11)},
    {f"Org{i}MSP": (100, 200, 300)[i % 3] for i in range(1, 21)},
    {"A": 50, "B": 30, "C": 20, "D": 5},
])
def test_the_stake_policy_text_reads_back_as_its_envelope(stakes):
    compiled = policy.compile_policy(stakes, 2, 3)
    env = policydsl.envelope(compiled["policy"])
    assert policy.decode_envelope(env) == policy.decode_envelope(bytes.fromhex(compiled["envelope_hex"]))
    rng = random.Random(7)
    orgs = sorted(stakes)
    for _ in range(200):
        signers = rng.sample(orgs, rng.randint(0, len(orgs)))
        assert policy.envelope_satisfied(env, signers) == policy.envelope_satisfied(
            bytes.fromhex(compiled["envelope_hex"]), signers)


def test_gates_roles_and_quotes():
    e = _parsed("outof(2, 'A.peer', \"B.member\", AND('C.admin', 'A.peer'))")
    roles = [msp_principal_pb2.MSPRole.FromString(p.principal) for p in e.identities]
    assert [(r.msp_identifier, r.role) for r in roles] == [
        ("A", msp_principal_pb2.MSPRole.PEER), ("B", msp_principal_pb2.MSPRole.MEMBER),
        ("C", msp_principal_pb2.MSPRole.ADMIN)]                     # one identity per distinct principal
    assert e.rule.n_out_of.n == 2 and len(e.rule.n_out_of.rules) == 3
    inner = e.rule.n_out_of.rules[2].n_out_of
    assert inner.n == 2 and [r.signed_by for r in inner.rules] == [2, 0]
    assert _parsed("OR('A.client')").rule.n_out_of.n == 1
    assert _parsed("'Org1MSP.orderer'").rule.signed_by == 0


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("OR('A.peer'", "ends early"),
    ("OR('A.peer' 'B.peer')", "expected ',' or '\\)'"),
    ("OR('A.peer'))", "after the policy"),
    ("OutOf(3, 'A.peer', 'B.peer')", "OutOf\\(3, …\\) over 2"),
    ("OutOf(0, 'A.peer')", "OutOf\\(0"),
    ("OutOf('A.peer')", "needs a count"),
    ("NOT('A.peer')", "AND/OR/OutOf"),
    ("OR('A.boss')", "role one of"),
    ("OR('.peer')", "MSPID.role"),
    ("OR(" * 5000 + "'A.peer'" + ")" * 5000, "nested too deeply"),
])
def test_malformed_text_is_refused_by_name(text, match):
    with pytest.raises(policydsl.PolicyTextError, match=match):
        policydsl.envelope(text)
