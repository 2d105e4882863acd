"""The end-to-end demo: a real network, three org processes, a secure job, an audit report.

Nothing here coordinates the training: the demo only starts things (network, one node process per
org), watches the ledger for progress, and at the end reads the ledger to report and compare.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.markup import escape

from ..network import paths
from ..network.config import ConsortiumConfig, load_config
from .jobfile import load_job_file

DEFAULT_JOB = Path(__file__).with_name("jobs") / "breast_cancer_secure.yaml"


@dataclass
class DemoResult:
    job_id: str
    rounds_finalized: int
    rounds_failed: int
    federated: dict
    centralized: dict
    ledger_height: int
    report_dir: Path | None
    seconds: float
    versions: list[dict] = field(default_factory=list)
    dp: dict | None = None


def node_command(org: str, job_id: str, run_root: Path, config_path: Path, extra: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "fedfabric", "node", "--org", org, "--job", job_id, "--run-dir", str(run_root),
            "--config", str(config_path), *(extra or [])]


def start_nodes(orgs: list[str], job_id: str, run_root: Path, config_path: Path,
                extra: dict[str, list[str]] | None = None) -> dict[str, subprocess.Popen]:
    """One ``fedfabric node`` process per org, logs under ``<run>/fl/<org>/node.log``."""
    procs = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for org in orgs:
        log_dir = run_root / "fl" / org
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "node.log", "ab") as logf:
            procs[org] = subprocess.Popen(node_command(org, job_id, run_root, config_path, (extra or {}).get(org)),
                                          stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return procs


def stop_nodes(procs: dict[str, subprocess.Popen], timeout: float = 10.0) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    end = time.monotonic() + timeout
    for p in procs.values():
        try:
            p.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class DemoError(RuntimeError):
    """A demo step failed; the message names the step and the cause."""


def _step(what: str, fn: Callable[[], Any]) -> Any:
    """Run one demo step; any failure becomes a :class:`DemoError` naming the step."""
    try:
        return fn()
    except DemoError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the step's name, the cause chained
        raise DemoError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


def _take_down(net: Any, con: Any) -> None:
    """``net.down()``, reporting (not raising) a failure so it never hides the demo's own error."""
    con.print("Taking the network down …")
    try:
        net.down()
    except Exception as exc:  # noqa: BLE001 - the operator gets the message and the command to finish it
        con.print(f"[bold red]could not take the network down[/]: {type(exc).__name__}: {exc} "
                  f"(finish with: network/network.sh down, run dir {net.layout.root})")


def run_demo(*, config_path: Path = paths.DEFAULT_CONFIG, run_root: Path | None = None,
             job_file: Path = DEFAULT_JOB, out_dir: Path | None = None, keep_network: bool = False,
             timeout: float = 1200.0, console: Any = None) -> DemoResult:
    """Network up → consortium → job → three nodes → report → network down.

    The job file is checked in full (fields, shards, model) before the network comes up; once it is
    up, the network is taken down whatever happens (unless ``keep_network``). A failed step raises
    :class:`DemoError` after printing it.
    """
    from rich.console import Console

    from ..network.manager import SiteManager
    from .bootstrap import job_spec

    con = console or Console()
    config: ConsortiumConfig = load_config(config_path)
    run_root = (run_root or paths.run_dir()).resolve()
    job = load_job_file(job_file, [o.name for o in config.orgs])
    job = job.renamed(f"{job.job_id}-{time.strftime('%Y%m%d-%H%M%S')}")
    msp_of = {o.name: o.msp_id for o in config.orgs}
    spec = job_spec(job, msp_of)   # JobFileError here: nothing started yet
    t0 = time.monotonic()
    net = SiteManager(config, run_root, report=lambda m: con.print(f"[dim]network:[/] {m}"))
    con.rule("[bold]fedfabric demo")
    try:
        return _run(con, net, config, Path(config_path), run_root, job, spec, out_dir, timeout, t0)
    except DemoError as exc:
        con.print(f"[bold red]demo failed[/]: {escape(str(exc))}")
        raise
    finally:
        if not keep_network:
            _take_down(net, con)


def _run(con: Any, net: Any, config: ConsortiumConfig, config_path: Path, run_root: Path, job: Any, spec: dict,
         out_dir: Path | None, timeout: float, t0: float) -> DemoResult:
    """The demo's steps on a network that ``run_demo`` takes down afterwards."""
    from ..client import open_client
    from ..network.deploy import product_deployment
    from .bootstrap import init_consortium

    con.print(f"Bringing up the consortium network ({len(config.orgs)} orgs, "
              f"{len(config.orderer_org.orderers)} Raft orderers, channel '{config.channel}') …")
    _step("bringing the network up", net.up)
    _step("deploying the fedfabric chaincode", lambda: net.deploy(product_deployment(config)))
    procs: dict[str, subprocess.Popen] = {}
    gw = None
    try:
        gw, admin = _step("connecting to org1's peer", lambda: open_client(config.orgs[0].name, "Admin",
                                                                           config=config, run_root=run_root))
        _step("waiting for the chaincode", admin.wait_ready)
        if _step("recording the consortium", lambda: init_consortium(admin, config)):
            con.print("Consortium recorded on the ledger: "
                      + ", ".join(f"{o.msp_id} (stake {o.stake})" for o in config.orgs))
        spec = _step(f"creating job {job.job_id}", lambda: admin.create_job(spec).value)["spec"]
        con.print(f"Job [bold]{job.job_id}[/]: {spec['hyperparams']['dataset']} · {spec['model']['arch_id']} "
                  f"({spec['model']['num_params']} parameters) · {spec['rounds']} rounds · {spec['privacy']} "
                  f"aggregation · quorum {spec['quorum'][0]}/{spec['quorum'][1]} of stake")
        members = set(spec["participants"])
        procs = start_nodes([o.name for o in config.orgs if o.msp_id in members], job.job_id, run_root, config_path)
        con.print(f"Started {len(procs)} org nodes (logs: {run_root / 'fl'}/<org>/node.log)")
        _step("following the rounds", lambda: _follow(con, admin, job.job_id, spec, procs, run_root, timeout))
        stop_nodes(procs)
        procs = {}
        result = _step("writing the report", lambda: summarize(admin, job.job_id, config, run_root, out_dir, t0))
        con.print(render_summary(result, result.ledger_height))
        if result.report_dir:
            con.print(f"Audit report: [bold]{result.report_dir / 'report.html'}[/] (plots, contributors, votes, "
                      "stake, rewards, lineage with tx ids)")
        return result
    finally:
        stop_nodes(procs)
        if gw is not None:
            gw.close()


def _follow(con: Any, admin: Any, job_id: str, spec: dict, procs: dict[str, subprocess.Popen], run_root: Path,
            timeout: float) -> None:
    """A progress bar of the rounds until the job is over; errors if every node died or time ran out."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]rounds"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=con) as progress:
        task = progress.add_task("", total=spec["rounds"])
        deadline = time.monotonic() + timeout
        while True:
            j = admin.get_job(job_id)
            state = admin.get_round(job_id, j["current_round"]).state.value
            progress.update(task, completed=j["rounds_finalized"] + j["rounds_failed"],
                            description=f"round {j['current_round']}: {state}" if state else "starting")
            if j["status"] != "active":
                return
            if all(p.poll() is not None for p in procs.values()):
                raise DemoError(f"all node processes exited; see {run_root / 'fl'}/<org>/node.log")
            if time.monotonic() > deadline:
                raise DemoError(f"job {job_id} not finished after {timeout:.0f}s")
            time.sleep(0.5)


def summarize(admin: Any, job_id: str, config: ConsortiumConfig, run_root: Path, out_dir: Path | None,
              t0: float) -> DemoResult:
    """Final accuracy of the ledger's latest version vs a centrally trained baseline; the audit report."""
    from fedfabric_protocol.spec import JobSpec

    from ..artifacts import ArtifactStore
    from ..fl.simulate import centralized
    from ..fl.task import held_out_split, task_for
    from ..fl.models import vector_to_model
    from ..fl.train import evaluate

    job = admin.get_job(job_id)
    spec = JobSpec.from_dict(job["spec"])
    latest = admin.get_version(job_id, "latest")
    org = next(o for o in config.orgs if o.msp_id in spec.participants)
    store = ArtifactStore(run_root / "fl" / org.name / "artifacts")   # a participant's store holds every version
    task = task_for(spec, org.msp_id)
    X_test, y_test = held_out_split(spec.hyperparams)
    fed = evaluate(vector_to_model(task.new_model(), store.get_model(latest["model_hash"])), X_test, y_test)
    cen = centralized(spec)
    height = admin.contract.network.qscc().chain_info()["height"] if hasattr(admin.contract, "network") else 0
    report_dir = None
    try:
        from ..audit import report as audit_report  # the audit package writes HTML + PNG + JSON
        report_dir = Path(out_dir or (paths.REPO_ROOT / "reports" / job_id))
        audit_report(admin, job_id, report_dir, store=store,
                     baseline={"centralized_accuracy": cen["accuracy"], "federated_accuracy": fed["accuracy"]})
    except ImportError:
        report_dir = None
    versions = admin.list_versions(job_id)
    return DemoResult(job_id=job_id, rounds_finalized=job["rounds_finalized"], rounds_failed=job["rounds_failed"],
                      federated=fed, centralized=cen, ledger_height=height, report_dir=report_dir,
                      seconds=time.monotonic() - t0, versions=versions,
                      dp={"epsilon": latest.get("dp_epsilon_total_milli", 0) / 1000, "delta_exp": spec.dp.delta_exp,
                          "budget": spec.dp.epsilon_budget_milli / 1000} if spec.dp.enabled else None)


def render_summary(res: DemoResult, height: int) -> Any:
    from rich.table import Table

    t = Table(title=f"fedfabric demo — job {res.job_id}", show_header=True)
    t.add_column("")
    t.add_column("value", justify="right")
    gap = (res.centralized["accuracy"] - res.federated["accuracy"]) * 100
    t.add_row("federated test accuracy (ledger's final version)", f"{res.federated['accuracy'] * 100:.2f} %")
    t.add_row("centrally trained baseline (pooled data)", f"{res.centralized['accuracy'] * 100:.2f} %")
    t.add_row("gap (centralized − federated)", f"{gap:+.2f} points")
    if res.dp:
        t.add_row("differential privacy: ε spent (budget)", f"{res.dp['epsilon']:.2f} ({res.dp['budget']:g}) "
                                                             f"at δ = 1e-{res.dp['delta_exp']}")
    t.add_row("rounds finalized / failed", f"{res.rounds_finalized} / {res.rounds_failed}")
    t.add_row("model versions on the ledger", str(len(res.versions)))
    t.add_row("ledger height (blocks)", str(height))
    t.add_row("wall time", f"{res.seconds:.1f} s")
    return t
