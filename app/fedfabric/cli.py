"""``fedfabric``: the command line of the consortium's federated learning.

Every command explains itself with ``--help``. The network commands are the same as
``network/network.sh``; the others talk to the ledger through the Fabric Gateway.
"""

from __future__ import annotations

from pathlib import Path

import typer

from . import __version__
from .cli_audit import audit_app, model_app

app = typer.Typer(
    name="fedfabric",
    help="Federated learning for a consortium, coordinated and audited by Hyperledger Fabric.\n\n"
         "Start with `fedfabric demo` (a real network on this machine, end to end), or "
         "`fedfabric network up` to bring the consortium network up yourself.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
def network(ctx: typer.Context) -> None:
    """Bring the Fabric network up, down, inspect it, deploy chaincode (same as network/network.sh).

    Try `fedfabric network --help`.
    """
    from .network.cli import main

    raise typer.Exit(main(list(ctx.args) or ["--help"]))


@app.command()
def version() -> None:
    """Print the fedfabric version and the pinned Fabric release."""
    from .network.fabricbin import read_pin

    pin = read_pin()
    typer.echo(f"fedfabric {__version__} (Hyperledger Fabric {pin['FABRIC_RELEASE']}, "
               f"{pin['FABRIC_MODULE']}@{pin['FABRIC_MODULE_VERSION']})")


# ---- shared options -----------------------------------------------------------------------------
ORG_OPT = typer.Option("org1", "--org", help="Which organization you act as (name from consortium.yaml, e.g. org2).")
RUN_OPT = typer.Option(None, "--run-dir", help="The network's run directory (default: $FEDFABRIC_RUN_DIR or ./run).")
CONFIG_OPT = typer.Option(None, "--config", help="The consortium definition (default: network/consortium.yaml).")


def _config(config: Path | None):
    from .network import paths
    from .network.config import ConfigError, load_config

    try:
        return load_config(config or paths.DEFAULT_CONFIG)
    except (ConfigError, OSError) as exc:
        _fail(f"bad consortium config: {exc}")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _client(org: str, user: str, config: Path | None, run_dir: Path | None):
    from .client import open_client

    cfg = _config(config)
    try:
        cfg.org(org)
    except Exception:  # noqa: BLE001
        _fail(f"unknown org {org!r} (consortium members: {', '.join(o.name for o in cfg.orgs)})")
    try:
        return open_client(org, user, config=cfg, run_root=run_dir)
    except FileNotFoundError as exc:
        _fail(str(exc))


consortium_app = typer.Typer(help="The consortium's members and stake on the ledger.", no_args_is_help=True)
job_app = typer.Typer(help="Training jobs: create one from a YAML job file, inspect them.", no_args_is_help=True)
app.add_typer(consortium_app, name="consortium")
app.add_typer(job_app, name="job")
app.add_typer(audit_app, name="audit")
app.add_typer(model_app, name="model")


@consortium_app.command("init")
def consortium_init(config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT, org: str = ORG_OPT) -> None:
    """Record the orgs, their stake and the approval quorum of consortium.yaml on the ledger (once).

    Needs an org admin; run it after `fedfabric network up`.
    """
    from .node.bootstrap import init_consortium

    gw, client = _client(org, "Admin", config, run_dir)
    with gw:
        client.wait_ready()
        done = init_consortium(client, _config(config))
        typer.echo("consortium initialized" if done else "consortium was already initialized; nothing changed")


@consortium_app.command("show")
def consortium_show(org: str = ORG_OPT, user: str = typer.Option("User1", help="Identity to read as."),
                    config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Members, stake, balances and the stake-weighted endorsement policy in force."""
    from rich.console import Console
    from rich.table import Table

    gw, client = _client(org, user, config, run_dir)
    with gw:
        t = Table(title="consortium")
        for c in ("org", "MSP", "status", "stake", "balance"):
            t.add_column(c)
        for o in client.list_orgs():
            t.add_row(o["name"], o["msp_id"], o["status"], str(o["stake"]), str(o["balance"]))
        Console().print(t)
        Console().print(f"endorsement policy: {client.get_policy()['policy']}")


@job_app.command("create")
def job_create(file: Path = typer.Argument(..., help="The YAML job file (see app/fedfabric/node/jobs/)."),
               org: str = ORG_OPT, config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT,
               job_id: str = typer.Option(None, "--job-id", help="Override the file's job_id.")) -> None:
    """Create a training job from a YAML job file (as the org's admin).

    The file names the dataset, model, partition, rounds, local training, privacy mode,
    aggregation rule, DP, quorum, windows and participants; it is checked in full before anything is
    written. The initial model is built from it and its hash becomes lineage version 0.
    """
    from .client import Rejected
    from .node.bootstrap import create_job
    from .node.jobfile import JobFileError, load_job_file

    cfg = _config(config)
    try:
        job = load_job_file(file, [o.name for o in cfg.orgs])
    except JobFileError as exc:
        _fail(str(exc))
    if job_id:
        job.job_id = job_id
    gw, client = _client(org, "Admin", config, run_dir)
    with gw:
        try:
            rec = create_job(client, job, {o.name: o.msp_id for o in cfg.orgs})
        except (Rejected, ValueError) as exc:
            _fail(str(exc))
    typer.echo(f"job {rec['job_id']} created: {rec['spec']['rounds']} rounds, {rec['spec']['privacy']} mode, "
               f"initial model {rec['spec']['model']['initial_hash'][:16]}…")


@job_app.command("show")
def job_show(job: str = typer.Argument(..., help="Job id."), org: str = ORG_OPT,
             user: str = typer.Option("User1", help="Identity to read as."),
             config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """A job's spec, status and its rounds so far."""
    import json as _json

    from .client import Rejected

    gw, client = _client(org, user, config, run_dir)
    with gw:
        try:
            rec = client.get_job(job)
            rounds = client.list_rounds(job)
        except Rejected as exc:
            _fail(exc.message)
    typer.echo(_json.dumps({"job": rec, "rounds": rounds}, indent=2, sort_keys=True))


@app.command()
def node(org: str = typer.Option(..., "--org", help="The organization this node trains for (e.g. org1)."),
         job: str = typer.Option(..., "--job", help="The job to follow."),
         user: str = typer.Option("User1", help="The org identity the node signs with."),
         config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT,
         workdir: Path = typer.Option(None, help="Where keys and models live (default <run-dir>/fl/<org>)."),
         grace: float = typer.Option(4.0, help="Seconds to wait before covering for a silent round leader."),
         timeout: float = typer.Option(None, help="Give up after this many seconds."),
         crash_in_round: int = typer.Option(None, hidden=True, help="Testing: exit when this round is collecting."),
         ) -> None:
    """Run one organization's training node for a job until the job completes.

    The node follows the contract's events on its own peer and does this org's duty in each
    round: register a fresh key, train on its own data shard, mask and submit the update, reveal
    seeds for dropped peers, fetch and check the aggregate, evaluate it on its own validation data
    and vote. There is no coordinator: start one node per org. A restarted node rejoins the
    current round.
    """
    import logging

    from .network import paths
    from .node.runtime import NodeOptions, NodeStopped, OrgNode

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("fedfabric.ledger").setLevel(logging.WARNING)
    cfg = _config(config)
    gw, client = _client(org, user, config, run_dir)
    o = cfg.org(org)
    root = (run_dir or paths.run_dir()).resolve()
    events = gw.get_network(cfg.channel).chaincode_events("fedfabric")
    opts = NodeOptions(grace=grace, stop_after_round=crash_in_round)
    n = OrgNode(client, o.msp_id, job, workdir or root / "fl" / o.name, opts, events=events)
    import signal as _signal

    _signal.signal(_signal.SIGTERM, lambda *_: n.stop())
    try:
        n.run(timeout=timeout)
    except NodeStopped as exc:
        typer.echo(f"node stopped: {exc}", err=True)
        raise typer.Exit(3)
    finally:
        gw.close()


@app.command()
def demo(keep_network: bool = typer.Option(False, help="Leave the network running afterwards."),
         job_file: Path = typer.Option(None, help="Job file (default: 3 orgs, breast cancer, 10 secure rounds)."),
         out: Path = typer.Option(None, help="Report directory (default: reports/<job-id>)."),
         config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """The whole thing, end to end, on this machine.

    Brings up the Fabric network (3 Raft orderers, 3 org peers, the fedfabric chaincode), records
    the consortium, creates a job (3 orgs, breast-cancer data split non-IID, secure aggregation,
    10 rounds), starts one training node per org, follows the rounds, writes the audit report and
    compares the final model with a centrally trained one, then takes the network down.
    """
    from .network import paths
    from .node.demo import DEFAULT_JOB, run_demo

    run_demo(config_path=config or paths.DEFAULT_CONFIG, run_root=run_dir, job_file=job_file or DEFAULT_JOB,
             out_dir=out, keep_network=keep_network)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
