"""fedfabric.stakefit: a stake change is checked with the contract's own compiler before it is sent,
and a refusal names amounts that fit. 50 orgs in four stake classes 400/500/700/900 (12/13/12/13 orgs)
fit in 48 KB; a change that makes a fifth stake class leaves no envelope under 64 KiB."""
from __future__ import annotations

import pytest

from fedfabric import stakefit
from fedfabric_cc import policy

VALUES = (400, 500, 700, 900)


def orgs(counts: tuple[int, ...], status: str = "active") -> list[dict]:
    """``list_orgs`` records: Org1MSP.. in classes of ``VALUES`` with ``counts`` orgs; Org1MSP holds 900."""
    stakes = [900] + [v for v, c in zip(VALUES, counts) for _ in range(c - (v == 900))]
    return [{"msp_id": f"Org{i + 1}MSP", "stake": s, "status": status} for i, s in enumerate(stakes)]


EDGE = orgs((12, 13, 12, 13))
QUORUM = (2, 3)


def stakes_of(records: list[dict]) -> dict[str, int]:
    return {o["msp_id"]: o["stake"] for o in records}


def size_of(stakes: dict[str, int]) -> int:
    return policy.compile_policy(stakes, *QUORUM)["size"]["envelope_bytes"]


def test_a_change_that_fits_is_sized_like_the_contract_sizes_it() -> None:
    got = stakefit.check(EDGE, QUORUM, -200, {"Org1MSP": +1})     # 900 -> 700
    assert got == size_of({**stakes_of(EDGE), "Org1MSP": 700}) < policy.MAX_POLICY_BYTES


def test_a_refused_change_names_the_fitting_amounts_nearest_first() -> None:
    with pytest.raises(stakefit.StakeChangeRefused) as err:
        stakefit.check(EDGE, QUORUM, -450, {"Org1MSP": +1})    # 900 -> 450: a fifth class
    assert "no exact endorsement policy of at most 65536 bytes" in str(err.value)
    assert "5 distinct stake classes" in str(err.value)
    with pytest.raises(policy.PolicyError):                                     # the contract refuses it too
        policy.compile_policy({**stakes_of(EDGE), "Org1MSP": 450}, *QUORUM)
    # joining 500 (-400) or 400 (-500) is nearest, then 700 (-200); staying at 900 (0) is no change
    assert [(a.amount, a.joins, a.envelope_bytes) for a in err.value.alternatives] == [
        (-500, 400, size_of({**stakes_of(EDGE), "Org1MSP": 400})),
        (-400, 500, size_of({**stakes_of(EDGE), "Org1MSP": 500})),
        (-200, 700, size_of({**stakes_of(EDGE), "Org1MSP": 700}))]


def test_a_transfer_moves_two_orgs_and_only_valid_amounts_are_offered() -> None:
    # Org1MSP (900) gives Org14MSP (500) 500: 400 and a new 1000, five classes -- refused. Amounts that
    # give one of them a stake others hold: 400 (the sender 500, the receiver 900: the classes of now)
    # and 200 (both 700); 0 and the sender's 500 -> 400 (the amount asked) are not offered.
    with pytest.raises(stakefit.StakeChangeRefused) as err:
        stakefit.check(EDGE, QUORUM, 500, {"Org1MSP": -1, "Org14MSP": +1}, positive=True)
    assert [(a.amount, a.joins, a.envelope_bytes) for a in err.value.alternatives] == [
        (400, 500, size_of(stakes_of(EDGE))),
        (200, 700, size_of({**stakes_of(EDGE), "Org1MSP": 700, "Org14MSP": 700}))]


def test_amounts_the_contract_refuses_anyway_are_left_to_it() -> None:
    assert stakefit.check(EDGE, QUORUM, 5000, {"Org1MSP": -1, "Org2MSP": +1}, positive=True) is None
    # suspended orgs hold no voting stake: a change among them leaves the policy of nobody
    assert stakefit.check(orgs((12, 13, 12, 13), status="suspended"), QUORUM, 10, {"Org1MSP": +1}) is None
    assert stakefit.check(EDGE, QUORUM, 10, {"Org99MSP": +1}) is None          # not a member: its words
    assert stakefit.check(EDGE, QUORUM, 0, {"Org1MSP": +1}) is None            # no change
    assert stakefit.check(EDGE, QUORUM, -901, {"Org1MSP": +1}) is None         # burns more than it holds
    assert stakefit.check(EDGE, QUORUM, -5, {"Org1MSP": -1, "Org2MSP": +1}, positive=True) is None


def test_stake_owed_to_slashing_is_not_offered_for_transfer() -> None:
    owing = [{**o, "slash_owed": 300} if o["msp_id"] == "Org1MSP" else o for o in EDGE]   # 900, 300 owed
    assert stakefit.check(owing, QUORUM, 700, {"Org1MSP": -1, "Org14MSP": +1}, positive=True) is None
    # 400 (900 -> 500, 500 -> 900) swaps two classes' members and leaves 600 >= 300: taken
    assert stakefit.check(owing, QUORUM, 400, {"Org1MSP": -1, "Org14MSP": +1}, positive=True) == size_of(
        stakes_of(EDGE))
    # a burn by governance is not a transfer: what is owed does not limit it
    assert stakefit.check(owing, QUORUM, -200, {"Org1MSP": +1}) == size_of({**stakes_of(EDGE), "Org1MSP": 700})
