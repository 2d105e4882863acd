"""Live: a consortium of ten orgs on this machine (one Raft orderer, one peer, CA and chaincode server per
org) runs a short secure job with the stake policy in force: all ten nodes contribute to every version
and approve it, and the policies on the chain are the compiled ones -- the chaincode definition's (as
Fabric compiled the policy string the deployment approved), the key-level policy set on the job's keys,
and the contract's record of both.

Its own ports (offset 21000, a range the default consortium leaves free) and its own run directory; the
network is taken down at the end. About 70 s on 2 cores (network up 4 s, deploy 6 s, ten nodes' start-up
about 27 s, then about 4 s a round)."""
from __future__ import annotations

from itertools import combinations

import pytest

from fedfabric_cc import policy
from fedfabric_protocol import stakerule

from tests.chaincode_live.helpers import Party, invalid_transactions

from .many_orgs import job_file, key_policies_written, lifecycle_envelope, many_orgs_network, run_job
from ..ports import OFFSETS

pytestmark = pytest.mark.live

OFFSET = OFFSETS["ten-orgs"]
N = 10
ROUNDS = 2


@pytest.fixture(scope="module")
def ten(tmp_path_factory):
    with many_orgs_network(tmp_path_factory.mktemp("ten-orgs"), N, OFFSET) as c:
        yield c


def test_ten_orgs_run_a_secure_job_under_the_stake_policy(ten):
    stakes = {o.msp_id: o.stake for o in ten.net.config.orgs}
    compiled = policy.compile_policy(stakes, 2, 3)
    assert compiled["policy"].startswith("OutOf(7,") and compiled["vectors"] == [[7]]

    qscc = ten.admin.contract.network.qscc()
    first = qscc.chain_info()["height"]
    run = run_job(ten, job_file(N, ROUNDS, "secure"), timeout=240)
    assert run.job["status"] == "completed", run.job
    assert (run.job["rounds_finalized"], run.job["rounds_failed"]) == (ROUNDS, 0), run.logs["org1"][-3000:]
    everyone = sorted(stakes)
    for r in range(1, ROUNDS + 1):
        v = ten.admin.get_version(run.job_id, r)
        assert sorted(c["msp_id"] for c in v["contributors"]) == everyone, (r, v["contributors"])
        assert sorted(a["msp_id"] for a in v["approvals"] if a["approve"]) == everyone, (r, v["approvals"])
    assert all(x["submitted"] == N and x["voted"] == N for x in run.rounds), run.rounds
    assert run.rounds[-1]["round_s"] < 60, run.rounds
    # nothing was invalidated: a write an endorser refused as "not yet" is sent again, never ordered
    party = Party("org1", "Org1MSP", ten.admin, ten.admin)
    assert invalid_transactions(party, first, qscc.chain_info()["height"] - 1) == []

    # the contract's record: the compiled policy, and the rule of the chaincode definition
    on_chain = ten.admin.get_policy()
    assert {k: v for k, v in on_chain.items() if k != "lifecycle"} == compiled
    assert on_chain["lifecycle"] == stakerule.own_rule(compiled)
    # the chaincode definition: Fabric's compilation of the approved string is the same policy, term for term
    life = lifecycle_envelope(ten)
    assert policy.decode_envelope(life) == policy.decode_envelope(bytes.fromhex(compiled["envelope_hex"]))
    for size in (6, 7):
        for orgs in combinations(everyone, size):
            assert policy.envelope_satisfied(life, orgs) == (size >= 7)
    # the key-level policy the job's creation set on the job's keys
    written = key_policies_written(ten, run.created.tx_id, run.created.block_number)
    assert written and set(written.values()) == {bytes.fromhex(compiled["envelope_hex"])}, written.keys()
