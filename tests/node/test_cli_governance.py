"""`fedfabric consortium transfer|propose|approve|history` and `fedfabric model promote` through typer's
CliRunner, on the real contract over the in-memory stub (tests.node.memledger)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedfabric.cli import app
from fedfabric.client import FedFabricClient
from fedfabric_cc import policy

from tests.audit.ledger import JOB, build_world
from tests.chaincode.harness import ORGS, Ledger, init
from tests.cli_ledger import serve
from tests.node.memledger import MemClient

runner = CliRunner()


def _connect(monkeypatch, ledger: Ledger) -> list:
    """Each command's org's client on ``ledger``, as an admin when it acts as Admin."""
    return serve(monkeypatch, lambda org, user: MemClient(ledger, f"Org{org[-1]}MSP",
                                                         "admin" if user == "Admin" else "trainer"))


def run(*args: str):
    res = runner.invoke(app, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res


def _stakes(led: Ledger) -> dict[str, int]:
    return {o["msp_id"]: o["stake"] for o in MemClient(led, ORGS[0]).list_orgs()}


@pytest.fixture
def led(monkeypatch) -> tuple[Ledger, list]:
    ledger = Ledger()
    init(ledger)
    return ledger, _connect(monkeypatch, ledger)


def test_stake_proposal_needs_the_quorum_and_is_in_the_history(led) -> None:
    ledger, seen = led
    res = run("consortium", "propose", "stake", "grant-1", "Org3MSP", "+50", "--reason", "second study")
    assert res.exit_code == 0, res.output
    assert "proposal grant-1: pending, approved by Org1MSP" in res.output
    assert (seen[-1].org, seen[-1].user) == ("org1", "Admin")
    assert _stakes(ledger)["Org3MSP"] == 100                        # 1/3 of stake < 2/3 quorum

    res = run("consortium", "approve", "stake", "grant-1", "--org", "org2")
    assert res.exit_code == 0, res.output
    assert "proposal grant-1: applied, approved by Org1MSP, Org2MSP" in res.output
    assert _stakes(ledger) == {"Org1MSP": 100, "Org2MSP": 100, "Org3MSP": 150}

    again = run("consortium", "approve", "stake", "grant-1", "--org", "org3")
    assert again.exit_code == 2 and "stake proposal grant-1 is already applied" in again.output

    hist = run("consortium", "history", "Org3MSP")
    assert hist.exit_code == 0, hist.output
    row = next(line for line in hist.output.splitlines() if "adjustment" in line)
    assert re.search(r"stake\s*│\s*100\s*│\s*150\s*│\s*50", row), row


def test_transfer_moves_stake_and_refusals_change_nothing(led) -> None:
    ledger, _ = led
    assert run("consortium", "transfer", "Org2MSP", "30").exit_code == 0
    assert _stakes(ledger) == {"Org1MSP": 70, "Org2MSP": 130, "Org3MSP": 100}
    before = ledger.snapshot()
    too_much = run("consortium", "transfer", "Org2MSP", "500")
    assert too_much.exit_code == 2
    assert "Org1MSP holds 70 stake, cannot transfer 500" in too_much.output
    unknown = run("consortium", "transfer", "Org9MSP", "1")
    assert unknown.exit_code == 2 and "Org9MSP is not a member of the consortium" in unknown.output
    assert ledger.snapshot() == before


def test_suspension_by_status_proposal(led) -> None:
    ledger, _ = led
    assert run("consortium", "propose", "status", "pause-3", "Org3MSP", "suspended", "--reason", "audit",
               "--org", "org1").exit_code == 0
    res = run("consortium", "approve", "status", "pause-3", "--org", "org2")
    assert res.exit_code == 0 and "applied" in res.output, res.output
    status = {o["msp_id"]: o["status"] for o in MemClient(ledger, ORGS[0]).list_orgs()}
    assert status == {"Org1MSP": "active", "Org2MSP": "active", "Org3MSP": "suspended"}


def test_a_stake_change_without_a_compact_policy_is_not_sent_and_fitting_amounts_are_named(monkeypatch) -> None:
    """50 orgs at 12/13/12/13 of 400/500/700/900 fit in 48 KB; moving Org1MSP from 900 to 450 makes a
    fifth stake class, which has no exact envelope under 64 KiB (tests/node/test_stakefit.py)."""
    from tests.node.test_stakefit import EDGE

    ledger = Ledger()
    init(ledger, stakes=[o["stake"] for o in EDGE], balances=[0] * len(EDGE), orgs=[o["msp_id"] for o in EDGE])
    _connect(monkeypatch, ledger)
    before = ledger.snapshot()
    res = run("consortium", "propose", "stake", "cut-1", "Org1MSP", "-450", "--reason", "audit finding")
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "not sent, the contract would refuse it" in out and "no exact endorsement policy" in out
    assert "It accepts: a stake change of -500 (then holding 400, as other members do" in out
    assert "; a stake change of -400 (then holding 500" in out and "; a stake change of -200 (then holding 700" in out
    assert ledger.snapshot() == before                                     # no transaction was sent
    res = run("consortium", "propose", "stake", "cut-2", "Org1MSP", "-400", "--reason", "audit finding")
    assert res.exit_code == 0 and "proposal cut-2: pending" in res.output, res.output
    res = run("consortium", "transfer", "Org14MSP", "500")
    assert res.exit_code == 2 and "It accepts: transfer 400 to Org14MSP" in " ".join(res.output.split()), res.output


@pytest.mark.parametrize("args,message", [
    (("consortium", "propose", "votes", "p1", "Org3MSP", "+1", "--reason", "x"), "proposal kind must be one of stake, status"),
    (("consortium", "propose", "stake", "p1", "Org3MSP", "lots", "--reason", "x"), "a stake change is a signed integer"),
    (("consortium", "approve", "stake", "nope"), "nope"),
    (("consortium", "propose", "status", "p2", "Org3MSP", "gone", "--reason", "x"), "status must be one of"),
])
def test_bad_governance_input_is_refused_and_writes_nothing(led, args, message) -> None:
    ledger, _ = led
    before = ledger.snapshot()
    res = run(*args)
    assert res.exit_code == 2 and message in res.output, res.output
    assert ledger.snapshot() == before


def test_model_promote_sets_an_alias_on_a_finalized_version(tmp_path: Path, monkeypatch) -> None:
    world = build_world(tmp_path)
    opened = serve(monkeypatch, lambda org, user: MemClient(world.ledger, ORGS[1],
                                                             "admin" if user == "Admin" else "trainer"))
    writer = MemClient(world.ledger, ORGS[1])
    trainer = run("model", "promote", JOB, "1", "--user", "User1")
    assert trainer.exit_code == 2 and "role 'trainer' is not allowed (requires admin)" in trainer.output
    res = run("model", "promote", JOB, "1")
    assert [o.user for o in opened] == ["User1", "Admin"]
    assert res.exit_code == 0, res.output
    assert "production → version 1 of job job1" in res.output
    assert writer.list_aliases(JOB)["production"] == 1
    for bad, message in ((("model", "promote", JOB, "3"), "version 3 of job job1 not found"),
                         (("model", "promote", JOB, "2", "--alias", "latest"), "managed by the ledger")):
        before = world.ledger.snapshot()
        out = run(*bad)
        assert out.exit_code == 2 and message in out.output, out.output
        assert world.ledger.snapshot() == before


class _Down:
    """A contract on a peer that does not answer."""

    @staticmethod
    def _unreachable(error):
        import grpc

        return error("failed to connect to all addresses", grpc.StatusCode.UNAVAILABLE, endpoint="127.0.0.1:7051")

    def evaluate(self, fn, **kw):
        from fedfabric.ledger import EvaluateError

        raise self._unreachable(EvaluateError)

    def submit(self, fn, **kw):
        from fedfabric.ledger import EndorseError

        raise self._unreachable(EndorseError)


@pytest.mark.parametrize("args,code", [
    (("consortium", "transfer", "Org2MSP", "1"), 1),       # 1: the ledger could not be reached
    (("consortium", "history", "Org2MSP"), 1),
    (("org", "list"), 1),
    (("audit", "lineage", JOB), 2),                        # audit and model: 1 is kept for a failed check
    (("model", "list", JOB, "--json"), 2),
])
def test_an_unreachable_ledger_is_one_line_and_its_exit_status(monkeypatch, args, code) -> None:
    serve(monkeypatch, lambda org, user: FedFabricClient(_Down(), f"Org{org[-1]}MSP", retries=0))
    res = run(*args)
    assert res.exit_code == code, res.output
    assert "UNAVAILABLE: failed to connect to all addresses [peer 127.0.0.1:7051]" in res.output
    assert "is the network up? network/network.sh status" in res.output and "Traceback" not in res.output


def test_show_lists_members_and_sums_up_the_policy(led) -> None:
    res = runner.invoke(app, ["consortium", "show"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert all(m in res.output for m in ORGS)
    assert "orgs holding ≥ 2/3 of the stake; 1 stake class(es), 1 OutOf gate(s), 3 principal reference(s)" in res.output
    assert "OutOf(2,'Org1MSP.peer','Org2MSP.peer','Org3MSP.peer')" in res.output


def test_show_cuts_a_long_policy_text(monkeypatch) -> None:
    fifty = [f"Org{i}MSP" for i in range(1, 51)]
    ledger = Ledger()
    stakes = tuple((100, 200, 300, 400)[i % 4] for i in range(50))
    init(ledger, stakes=stakes, balances=(0,) * 50, orgs=fifty)
    compiled = policy.compile_policy(dict(zip(fifty, stakes)), 2, 3)          # what the contract keeps
    assert compiled["size"]["policy_bytes"] > 60_000
    serve(monkeypatch, lambda org, user: MemClient(ledger, "Org1MSP"))
    res = runner.invoke(app, ["consortium", "show"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "4 stake class(es)" in res.output and f"envelope {compiled['size']['envelope_bytes']:,} bytes" in res.output
    assert f"… ({len(compiled['policy']):,} characters in all: get_policy has the whole text)" in res.output
    assert len(res.output) < 10_000
