"""`fedfabric node` and `fedfabric demo` fail with one clear line (no traceback); the demo always takes
down the network it brought up; the node's live status line; help that reads like a manual."""
from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from fedfabric.cli import app
from fedfabric.cli import demo as demo_cli, job as job_cli, node as node_cli
from fedfabric.network.nodes import NodeError
from fedfabric.node import demo as demomod
from fedfabric.node.bootstrap import create_job
from fedfabric.node.jobfile import parse_job
from fedfabric.node.status import StatusLine

from tests.chaincode.harness import ORGS, Ledger, init
from tests.cli_ledger import serve

from .memledger import MemClient
from .test_nodes_memledger import MSP_OF, _job


@pytest.fixture
def ledger(monkeypatch):
    """A memledger with one 2-org job ``j-two`` and one 3-org job ``j-all``; the commands connect to it."""
    led = Ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    create_job(admin, parse_job(_job("j-two", participants=["org1", "org2"])), MSP_OF)
    create_job(admin, parse_job(_job("j-all")), MSP_OF)
    serve(monkeypatch, lambda org, user: MemClient(led, MSP_OF[org]))
    yield led
    root = logging.getLogger()
    for h in list(root.handlers):   # the node's own log handler writes to the runner's (now closed) stderr
        if getattr(h, "_fedfabric_node", False):
            root.removeHandler(h)


def _node(tmp_path, *args):
    return CliRunner().invoke(app, ["node", "--run-dir", str(tmp_path), "--wait-for-job", "0", *args])


@pytest.mark.parametrize("args,code,message", [
    (["--org", "org1", "--job", "nope"], 2, "error: job 'nope' does not exist on the ledger"),
    (["--org", "org3", "--job", "j-two"], 2, "error: Org3MSP is not a participant of job j-two"),
    (["--org", "org9", "--job", "j-all"], 2, "error: unknown org 'org9'"),
    (["--org", "org1", "--job", "j-all", "--timeout", "0.3"], 1, "error: Org1MSP: job j-all not finished after 0s"),
])
def test_node_errors_are_one_clear_line_and_an_exit_status(ledger, tmp_path, args, code, message):
    res = _node(tmp_path, *args)
    assert res.exit_code == code, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)   # an exit, not an uncaught error


def test_node_with_a_recipe_it_cannot_follow(ledger, tmp_path):
    from fedfabric.node.bootstrap import job_spec

    spec = job_spec(parse_job(_job("j-odd")), MSP_OF)
    spec["model"] = {**spec["model"], "arch_hash": "f" * 64}
    MemClient(ledger, ORGS[0], "admin").create_job(spec)
    res = _node(tmp_path, "--org", "org2", "--job", "j-odd")
    assert res.exit_code == 2, res.output
    assert "error: job j-odd: the initial model built here differs from the ledger's (arch_hash" in res.output
    assert "Traceback" not in res.output


def test_hidden_crash_flag_is_gone():
    res = CliRunner().invoke(app, ["node", "--org", "org1", "--job", "x", "--crash-in-round", "2"])
    assert res.exit_code == 2 and "No such option" in res.output


# ---- the status line
def test_status_line_shows_round_state_and_what_the_node_does():
    out = io.StringIO()
    st = StatusLine("Org1MSP", "bc-1", console=Console(file=out, force_terminal=True, width=120))
    assert st.live
    with st:
        st("state", {"round": 3, "rounds": 10, "state": "collecting"})
        st("doing", {"text": "training on 152 samples (3 epochs)"})
        assert st.text() == "Org1MSP · job bc-1 · round 3/10 · collecting · training on 152 samples (3 epochs)"
        st("update submitted", {"round": 3})
        assert st.text().endswith("collecting · update submitted")
        st("state", {"round": 3, "rounds": 10, "state": "aggregated"})
        assert "aggregated · …" in st.text()
    assert "round 3/10" in out.getvalue()


def test_status_line_is_silent_without_a_terminal():
    out = io.StringIO()
    st = StatusLine("Org1MSP", "bc-1", console=Console(file=out, force_terminal=False))
    with st:
        st("state", {"round": 1, "rounds": 2, "state": "open"})
    assert not st.live and out.getvalue() == ""


# ---- the demo takes down what it brought up, and says what failed
class _FakeNetwork:
    made: list["_FakeNetwork"] = []
    fail_in = ""

    def __init__(self, config, run_root, report=None, **kw):
        self.layout = SimpleNamespace(root=run_root)
        self.calls: list[str] = []
        _FakeNetwork.made.append(self)

    def up(self):
        self.calls.append("up")
        if self.fail_in == "up":
            raise NodeError("port 7050 (orderer1) is taken by another process")

    def deploy(self, dep):
        self.calls.append("deploy")
        if self.fail_in == "deploy":
            raise NodeError("peer lifecycle chaincode install failed: peer0.org2 unreachable")

    def down(self):
        self.calls.append("down")


@pytest.fixture
def fake_network(monkeypatch):
    _FakeNetwork.made = []
    monkeypatch.setattr("fedfabric.network.manager.SiteManager", _FakeNetwork)
    return _FakeNetwork


@pytest.mark.parametrize("step,message", [("up", "bringing the network up failed: NodeError: port 7050"),
                                          ("deploy", "deploying the fedfabric chaincode failed: NodeError: peer")])
def test_a_failed_bring_up_or_deploy_is_reported_and_the_network_taken_down(fake_network, tmp_path, step, message):
    fake_network.fail_in = step
    out = io.StringIO()
    with pytest.raises(demomod.DemoError, match=message):
        demomod.run_demo(run_root=tmp_path / "run", console=Console(file=out, width=200))
    assert fake_network.made[0].calls[-1] == "down"
    text = out.getvalue()
    assert "demo failed" in text and message in text and "Taking the network down" in text


def test_cli_demo_failure_is_one_line_and_exit_1(fake_network, tmp_path):
    fake_network.fail_in = "deploy"
    res = CliRunner().invoke(app, ["demo", "--run-dir", str(tmp_path / "run")])
    assert res.exit_code == 1, res.output
    assert "error: deploying the fedfabric chaincode failed" in res.output and "Traceback" not in res.output
    assert fake_network.made[0].calls == ["up", "deploy", "down"]


def test_cli_demo_checks_the_job_file_before_bringing_anything_up(fake_network, tmp_path):
    bad = tmp_path / "job.yaml"
    bad.write_text(yaml.safe_dump({**_job("d1"), "partition": {"kind": "by_label"}}))
    res = CliRunner().invoke(app, ["demo", "--job-file", str(bad), "--run-dir", str(tmp_path / "run")])
    assert res.exit_code == 2, res.output
    assert "no usable shard" in res.output and fake_network.made == []


# ---- help reads like a manual: paragraphs wrap to the terminal, examples keep their lines
@pytest.mark.parametrize("cmd,fn", [(["job", "create"], job_cli.job_create), (["node"], node_cli.node),
                                    (["demo"], demo_cli.demo)])
def test_help_paragraphs_wrap_to_the_terminal_not_to_the_source(cmd, fn):
    from rich.text import Text

    res = CliRunner().invoke(app, [*cmd, "--help"], env={"COLUMNS": "1000"}, terminal_width=1000)
    assert res.exit_code == 0
    lines = [x.strip() for x in res.output.splitlines()]
    paras = [Text.from_markup(p).plain for p in fn.__doc__.split("\n\n")]
    prose = [p for p in paras if "\n" not in p]
    assert len(prose) >= 3
    for p in prose:     # on a wide terminal every prose paragraph is exactly one line
        assert p.strip() in lines, p[:60]
    examples = next(p for p in paras if p.startswith("Examples"))
    for ex in examples.splitlines()[1:]:  # example lines stay lines
        assert ex.strip() in lines and ex.strip().startswith(f"fedfabric {' '.join(cmd)}")
    assert any(x.startswith("Exit status. 0 ") for x in lines)
