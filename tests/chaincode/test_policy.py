import pytest
from hypothesis import given, strategies as st

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2

from itertools import combinations
from fedfabric_cc import policy

O = ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"]


@pytest.mark.parametrize("stakes,num,den,want", [
    ((100, 100, 100), 2, 3, [("Org1MSP", "Org2MSP"), ("Org1MSP", "Org3MSP"), ("Org2MSP", "Org3MSP")]),
    ((50, 30, 20), 2, 3, [("Org1MSP", "Org2MSP"), ("Org1MSP", "Org3MSP")]),
    ((70, 20, 10), 2, 3, [("Org1MSP",)]),
    ((40, 30, 20, 10), 1, 2, [("Org1MSP", "Org2MSP"), ("Org1MSP", "Org3MSP"), ("Org1MSP", "Org4MSP"),
                              ("Org2MSP", "Org3MSP")]),
    ((1, 1, 1), 1, 1, [("Org1MSP", "Org2MSP", "Org3MSP")]),
    ((10, 0, 10), 1, 2, [("Org1MSP",), ("Org3MSP",)]),
])
def test_minimal_winning_coalitions(stakes, num, den, want):
    st_ = dict(zip(O, stakes))
    got = policy.minimal_winning_coalitions(st_, num, den)
    assert got == want
    assert policy.decode_envelope(policy.signature_policy_envelope(got)) == want


def test_policy_string_and_envelope_structure():
    c = policy.minimal_winning_coalitions({"Org1MSP": 1, "Org2MSP": 1, "Org3MSP": 1}, 2, 3)
    assert policy.policy_string(c) == ("OR(AND('Org1MSP.peer','Org2MSP.peer'),AND('Org1MSP.peer','Org3MSP.peer'),"
                                       "AND('Org2MSP.peer','Org3MSP.peer'))")
    assert policy.policy_string([("Org1MSP",)]) == "'Org1MSP.peer'"
    env = policies_pb2.SignaturePolicyEnvelope()
    env.ParseFromString(policy.signature_policy_envelope(c))
    assert env.version == 0 and env.rule.n_out_of.n == 1 and len(env.rule.n_out_of.rules) == 3
    assert [r.n_out_of.n for r in env.rule.n_out_of.rules] == [2, 2, 2]
    roles = []
    for p in env.identities:
        assert p.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE
        r = msp_principal_pb2.MSPRole()
        r.ParseFromString(p.principal)
        roles.append((r.msp_identifier, r.role))
    assert roles == [(m, msp_principal_pb2.MSPRole.PEER) for m in O[:3]]
    assert policy.signature_policy_envelope(c) == policy.signature_policy_envelope(c)  # deterministic bytes


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=6), st.integers(1, 12), st.integers(1, 12))
def test_coalitions_are_minimal_winning_and_complete(stakes, a, b):
    num, den = min(a, b), max(a, b)
    names = [f"Org{i}MSP" for i in range(len(stakes))]
    st_ = dict(zip(names, stakes))
    if sum(stakes) == 0:
        with pytest.raises(policy.PolicyError):
            policy.minimal_winning_coalitions(st_, num, den)
        return
    cs = policy.minimal_winning_coalitions(st_, num, den)
    total = sum(stakes)
    for c in cs:
        assert sum(st_[m] for m in c) * den >= num * total
        for m in c:  # dropping any member loses
            assert (sum(st_[x] for x in c) - st_[m]) * den < num * total
    for size in range(1, len(names) + 1):  # every winning set of staked orgs contains a coalition
        for combo in combinations([m for m in names if st_[m] > 0], size):
            if sum(st_[m] for m in combo) * den >= num * total:
                assert any(set(c) <= set(combo) for c in cs)
    assert policy.decode_envelope(policy.signature_policy_envelope(cs)) == cs


@pytest.mark.parametrize("stakes,num,den,match", [
    ({"A": 0}, 1, 2, "total stake must be positive"),
    ({"A": 1}, 0, 2, "must be in (0, 1]"),
    ({"A": 1}, 3, 2, "must be in (0, 1]"),
    ({"A": -1, "B": 2}, 1, 2, "must not be negative"),
    ({f"O{i}": 1 for i in range(17)}, 1, 2, "more than 16"),
])
def test_policy_errors(stakes, num, den, match):
    with pytest.raises(policy.PolicyError) as ei:
        policy.minimal_winning_coalitions(stakes, num, den)
    assert match in str(ei.value)
