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
from typing import Any

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


def run_demo(*, config_path: Path = paths.DEFAULT_CONFIG, run_root: Path | None = None,
             job_file: Path = DEFAULT_JOB, out_dir: Path | None = None, keep_network: bool = False,
             timeout: float = 1200.0, console: Any = None) -> DemoResult:
    """Network up → consortium → job → three nodes → report → network down."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..client import open_client
    from ..network.deploy import product_deployment
    from ..network.manager import Network
    from .bootstrap import create_job, init_consortium

    con = console or Console()
    config: ConsortiumConfig = load_config(config_path)
    run_root = (run_root or paths.run_dir()).resolve()
    job = load_job_file(job_file, [o.name for o in config.orgs])
    job.job_id = f"{job.job_id}-{time.strftime('%Y%m%d-%H%M%S')}"
    t0 = time.monotonic()
    net = Network(config, run_root, report=lambda m: con.print(f"[dim]network:[/] {m}"))
    con.rule("[bold]fedfabric demo")
    con.print(f"Bringing up the consortium network ({len(config.orgs)} orgs, "
              f"{len(config.orderer_org.orderers)} Raft orderers, channel '{config.channel}') …")
    net.up()
    net.deploy(product_deployment(config))
    procs: dict[str, subprocess.Popen] = {}
    gw = None
    try:
        gw, admin = open_client(config.orgs[0].name, "Admin", config=config, run_root=run_root)
        admin.wait_ready()
        if init_consortium(admin, config):
            con.print("Consortium recorded on the ledger: "
                      + ", ".join(f"{o.msp_id} (stake {o.stake})" for o in config.orgs))
        msp_of = {o.name: o.msp_id for o in config.orgs}
        rec = create_job(admin, job, msp_of)
        spec = rec["spec"]
        con.print(f"Job [bold]{job.job_id}[/]: {spec['hyperparams']['dataset']} · {spec['model']['arch_id']} "
                  f"({spec['model']['num_params']} parameters) · {spec['rounds']} rounds · {spec['privacy']} "
                  f"aggregation · quorum {spec['quorum'][0]}/{spec['quorum'][1]} of stake")
        procs = start_nodes([o.name for o in config.orgs if o.msp_id in spec["hyperparams"]["shards"]],
                            job.job_id, run_root, Path(config_path))
        con.print(f"Started {len(procs)} org nodes (logs: {run_root / 'fl'}/<org>/node.log)")
        with Progress(TextColumn("[bold]rounds"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=con) as progress:
            task = progress.add_task("", total=spec["rounds"])
            deadline = time.monotonic() + timeout
            while True:
                j = admin.get_job(job.job_id)
                done = j["rounds_finalized"] + j["rounds_failed"]
                state = ""
                if j["current_round"]:
                    state = admin.get_round(job.job_id, j["current_round"])["state"]
                progress.update(task, completed=done,
                                description=f"round {j['current_round']}: {state}" if state else "starting")
                if j["status"] != "active":
                    break
                dead = [o for o, p in procs.items() if p.poll() is not None]
                if len(dead) == len(procs):
                    raise RuntimeError(f"all node processes exited; see {run_root / 'fl'}/<org>/node.log")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job.job_id} not finished after {timeout:.0f}s")
                time.sleep(0.5)
        stop_nodes(procs)
        procs = {}
        result = summarize(admin, job.job_id, config, run_root, out_dir, t0)
        net_height = result.ledger_height
        con.print(render_summary(result, net_height))
        if result.report_dir:
            con.print(f"Audit report: [bold]{result.report_dir / 'report.html'}[/] (plots, contributors, votes, "
                      "stake, rewards, lineage with tx ids)")
        return result
    finally:
        stop_nodes(procs)
        if gw is not None:
            gw.close()
        if not keep_network:
            con.print("Taking the network down …")
            net.down()


def summarize(admin: Any, job_id: str, config: ConsortiumConfig, run_root: Path, out_dir: Path | None,
              t0: float) -> DemoResult:
    """Final accuracy of the ledger's latest version vs a centrally trained baseline; the audit report."""
    from ..artifacts import ArtifactStore
    from ..fl.datasets import load_dataset
    from ..fl.models import vector_to_model
    from ..fl.simulate import centralized_baseline
    from ..fl.train import evaluate
    from .task import resolve_arch_kwargs

    job = admin.get_job(job_id)
    spec = job["spec"]
    hyper = spec["hyperparams"]
    latest = admin.get_version(job_id, "latest")
    store = ArtifactStore(run_root / "fl" / config.orgs[0].name / "artifacts")
    ds = load_dataset(hyper["dataset"], seed=int(hyper["seed"]))
    kw = resolve_arch_kwargs(hyper, ds)
    from ..fl.models import build_model
    model = build_model(hyper["arch"], seed=int(hyper["seed"]), **kw)
    fed = evaluate(vector_to_model(model, store.get_model(latest["model_hash"])), ds.X_test, ds.y_test)
    cen = centralized_baseline(ds, hyper["arch"], kw, epochs=int(hyper["epochs"]) * spec["rounds"],
                               lr=float(hyper["lr"]), batch_size=int(hyper["batch_size"]),
                               optimizer=hyper["optimizer"], seed=int(hyper["seed"]))
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
                      dp={"epsilon": latest.get("dp_epsilon_total_milli", 0) / 1000, "delta_exp": spec["dp"]["delta_exp"],
                          "budget": spec["dp"]["epsilon_budget_milli"] / 1000} if spec["dp"]["enabled"] else None)


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
