"""``fedfabric``: the command line of the consortium's federated learning.

Every command explains itself with ``--help``. The network commands are the same as
``network/network.sh``; the others talk to the ledger through the Fabric Gateway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import typer

from . import __version__
from .cli_audit import audit_app, manual, model_app
from .cli_membership import org_app

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


def _config(config: Path | None, run_dir: Path | None = None):
    """The consortium as the site in ``run_dir`` sees it: the consortium file, and the orgs admitted later
    whose definitions the site imported."""
    from .network import paths
    from .network.config import ConfigError
    from .network.definition import DefinitionError, load_site_config

    try:
        return load_site_config(config or paths.DEFAULT_CONFIG, run_dir or paths.run_dir())
    except (ConfigError, DefinitionError, OSError) as exc:
        _fail(f"bad consortium config: {exc}")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _client(org: str, user: str, config: Path | None, run_dir: Path | None):
    from .client import open_client

    cfg = _config(config, run_dir)
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
app.add_typer(org_app, name="org")


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


# ---- stake and membership: every change is a transaction, approved by a stake quorum where it must be
def _write(org: str, user: str, config: Path | None, run_dir: Path | None, what: str,
           call: Callable[[Any], Any]) -> Any:
    """Run one ledger write as ``org``'s ``user``; the contract's refusal or a ledger failure is one line."""
    from .client import Rejected
    from .ledger import GatewayError

    gw, client = _client(org, user, config, run_dir)
    with gw:
        try:
            written = call(client)
        except Rejected as exc:
            _fail(exc.message)
        except GatewayError as exc:
            _fail(f"{what}: {exc}", 1)
    typer.echo(f"{what}: committed in block {written.block_number} (tx {written.tx_id[:16]}…)")
    return written.value


def _read(org: str, user: str, config: Path | None, run_dir: Path | None, call: Callable[[Any], Any]) -> Any:
    """Run ledger reads as ``org``'s ``user``; the contract's refusal is one line."""
    from .client import Rejected

    gw, client = _client(org, user, config, run_dir)
    with gw:
        try:
            return call(client)
        except Rejected as exc:
            _fail(exc.message)


def _proposal_outcome(value: dict) -> None:
    prop = value.get("proposal", value)
    typer.echo(f"proposal {prop.get('proposal_id')}: {prop.get('status')}, approved by "
               f"{', '.join(prop.get('approvals', [])) or 'nobody yet'}")


PROPOSAL_KINDS = ("stake", "status")


@consortium_app.command("transfer")
@manual
def consortium_transfer(to: str = typer.Argument(..., help="MSP id of the receiving org (e.g. Org2MSP)."),
                        amount: int = typer.Argument(..., help="Stake to move (a positive integer)."),
                        org: str = ORG_OPT, config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Move some of your org's stake to another member, as your org's admin.

    Stake weighs approval votes, the round-leader draw and rewards. After the transfer the contract
    recompiles the stake-weighted endorsement policy and sets it on every job and model key.

    [bold]Exit status.[/] 0 committed · 1 the ledger could not be reached · 2 refused (not an admin, not
    enough stake, unknown org, ...), with the contract's message.
    """
    _write(org, "Admin", config, run_dir, f"transfer {amount} stake to {to}",
           lambda c: c.transfer_stake(to, amount))


@consortium_app.command("propose")
@manual
def consortium_propose(kind: str = typer.Argument(..., help="stake (mint or burn) or status (suspend or reinstate)."),
                       proposal_id: str = typer.Argument(..., help="A new, unique proposal id."),
                       msp_id: str = typer.Argument(..., help="The org the change is about (e.g. Org3MSP)."),
                       change: str = typer.Argument(..., help="stake: a signed integer (+50, -20); status: "
                                                              "active or suspended."),
                       reason: str = typer.Option(..., "--reason", help="Why (recorded on the ledger)."),
                       org: str = ORG_OPT, config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Propose a change of an org's stake or status, as your org's admin; your org approves it at once.

    The change is applied when admins of orgs holding the consortium's approval quorum of stake have
    approved it (`fedfabric consortium approve`). A suspended org cannot write, is never drawn as round
    leader and carries no weight in votes or the endorsement policy.

    \b
    [bold]Examples[/]
      fedfabric consortium propose stake grant-7 Org3MSP +50 --reason "joined the second study"
      fedfabric consortium propose status pause-3 Org3MSP suspended --reason "audit pending" --org org2

    [bold]Exit status.[/] 0 committed · 1 the ledger could not be reached · 2 bad input or refused by the
    contract, with its message.
    """
    if kind not in PROPOSAL_KINDS:
        _fail(f"proposal kind must be one of {', '.join(PROPOSAL_KINDS)}, got {kind!r}")
    if kind == "stake":
        try:
            delta = int(change)
        except ValueError:
            _fail(f"a stake change is a signed integer such as +50 or -20, got {change!r}")
        value = _write(org, "Admin", config, run_dir, f"propose stake {delta:+d} for {msp_id}",
                       lambda c: c.propose_stake_adjustment(proposal_id, msp_id, delta, reason))
    else:
        value = _write(org, "Admin", config, run_dir, f"propose status {change} for {msp_id}",
                       lambda c: c.propose_status_change(proposal_id, msp_id, change, reason))
    _proposal_outcome(value)


@consortium_app.command("approve")
@manual
def consortium_approve(kind: str = typer.Argument(..., help="stake or status."),
                       proposal_id: str = typer.Argument(..., help="The proposal to approve."),
                       org: str = ORG_OPT, config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Approve a pending stake or status proposal, as your org's admin.

    Once the approving orgs hold the quorum of stake, the change is applied in the same transaction and
    the endorsement policy is recompiled.

    [bold]Exit status.[/] 0 committed · 1 the ledger could not be reached · 2 refused (already approved,
    not pending, unknown proposal, ...), with the contract's message.
    """
    if kind not in PROPOSAL_KINDS:
        _fail(f"proposal kind must be one of {', '.join(PROPOSAL_KINDS)}, got {kind!r}")
    call = ((lambda c: c.approve_stake_adjustment(proposal_id)) if kind == "stake"
            else (lambda c: c.approve_status_change(proposal_id)))
    _proposal_outcome(_write(org, "Admin", config, run_dir, f"approve {kind} proposal {proposal_id}", call))


@consortium_app.command("history")
def consortium_history(msp_id: str = typer.Argument(..., help="The org (e.g. Org2MSP)."), org: str = ORG_OPT,
                       user: str = typer.Option("User1", help="Identity to read as."),
                       config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Every change of an org's stake, balance and status, with the transaction that made it."""
    import datetime as _dt

    from rich.console import Console
    from rich.table import Table

    rows = _read(org, user, config, run_dir, lambda c: c.org_history(msp_id))
    t = Table(title=f"history of {msp_id}")
    for c in ("time (UTC)", "field", "before", "after", "delta", "reason", "tx"):
        t.add_column(c)
    for h in rows:
        when = _dt.datetime.fromtimestamp(h["ts"], _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if "ts" in h else ""
        t.add_row(when, str(h.get("field", "")), str(h.get("before", "")),
                  str(h.get("after", "")), str(h.get("delta", "")), str(h.get("reason", "")),
                  str(h.get("tx_id", ""))[:16])
    Console().print(t)


@job_app.command("create")
@manual
def job_create(file: Path = typer.Argument(..., help="The YAML job file (see app/fedfabric/node/jobs/)."),
               org: str = ORG_OPT, config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT,
               job_id: str = typer.Option(None, "--job-id", help="Override the file's job_id.")) -> None:
    """Create a training job from a YAML job file, as the org's admin.

    The job file names the dataset, the model, how the data is partitioned among the participants, the
    number of rounds, local training (epochs, learning rate, batch size, optimizer, FedProx mu), the
    privacy mode (secure or clear), the aggregation rule, optional differential privacy, the approval
    quorum, the minimum number of participants, the round windows and the participants. See the bundled
    examples in app/fedfabric/node/jobs/.

    Everything is checked before anything is written: every field, the participants against
    consortium.yaml, and every participant's data shard, built once exactly as its node will build it (a
    partition that leaves an org empty or with too few samples is refused, naming the partition and the
    org). The initial model is built from the file; its hash becomes version 0 of the job's lineage. The
    job's participants (their MSP ids) are recorded with the job; only their nodes take part.

    \b
    [bold]Examples[/]
      fedfabric job create app/fedfabric/node/jobs/breast_cancer_secure.yaml
      fedfabric job create my-job.yaml --job-id bc-2 --org org2

    [bold]Exit status.[/] 0 job created · 1 the ledger could not be reached or the transaction failed · 2
    bad input (invalid job file, a partition some org cannot train on, unknown org, no admin identity, or
    the contract refused the job, e.g. its id exists), with a one-line message; nothing is written on
    failure.
    """
    from .client import Rejected
    from .ledger import GatewayError
    from fedfabric_protocol.errors import show
    from fedfabric_protocol.fields import ID_RE

    from .node.bootstrap import job_spec
    from .node.jobfile import JobFileError, load_job_file

    cfg = _config(config, run_dir)
    try:
        job = load_job_file(file, [o.name for o in cfg.orgs])
        if job_id:
            if not ID_RE.match(job_id):
                raise JobFileError(f"--job-id must match {ID_RE.pattern}, got {show(job_id, 80)}")
            job = job.renamed(job_id)
        spec = job_spec(job, {o.name: o.msp_id for o in cfg.orgs})
    except JobFileError as exc:
        _fail(str(exc))
    gw, client = _client(org, "Admin", config, run_dir)
    with gw:
        try:
            rec = client.create_job(spec).value
        except Rejected as exc:
            _fail(str(exc))
        except GatewayError as exc:
            _fail(f"job {spec['job_id']} not created: {exc}", 1)
    typer.echo(f"job {rec['job_id']} created: {rec['spec']['rounds']} rounds, {rec['spec']['privacy']} mode, "
               f"participants {', '.join(rec['spec']['participants'])}, "
               f"initial model {rec['spec']['model']['initial_hash'][:16]}…")


@job_app.command("show")
def job_show(job: str = typer.Argument(..., help="Job id."), org: str = ORG_OPT,
             user: str = typer.Option("User1", help="Identity to read as."),
             config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """A job's spec, status and its rounds so far."""
    import json as _json

    rec, rounds = _read(org, user, config, run_dir, lambda c: (c.get_job(job), c.list_rounds(job)))
    typer.echo(_json.dumps({"job": rec, "rounds": rounds}, indent=2, sort_keys=True))


@app.command()
@manual
def node(org: str = typer.Option(..., "--org", help="The organization this node trains for (e.g. org1)."),
         job: str = typer.Option(..., "--job", help="The job to follow."),
         user: str = typer.Option("User1", help="The org identity the node signs with."),
         config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT,
         workdir: Path = typer.Option(None, help="Where keys and models live (default <run-dir>/fl/<org>)."),
         grace: float = typer.Option(4.0, help="Seconds to wait before covering for a silent round leader."),
         timeout: float = typer.Option(None, help="Give up after this many seconds."),
         wait_for_job: float = typer.Option(10.0, "--wait-for-job",
                                            help="Seconds to wait for the job to reach this org's peer."),
         torch_threads: int = typer.Option(1, "--torch-threads", min=1,
                                           help="CPU threads torch may use (co-located nodes share the cores)."),
         flower_client: str = typer.Option(None, "--flower-client", metavar="MODULE:FACTORY",
                                           help="Train with this Flower client (package.module:factory, e.g. the "
                                                "client_fn of a ClientApp) instead of the job's own recipe; needs "
                                                "flwr (the flower extra)."),
         metrics_port: int = typer.Option(None, "--metrics-port", min=0, max=65535,
                                          help="Serve this node's Prometheus metrics at /metrics on this port "
                                               "(0: a free one; the URL is logged and listed by network.sh status)."),
         metrics_host: str = typer.Option("127.0.0.1", "--metrics-host",
                                          help="Address the metrics endpoint listens on."),
         ) -> None:
    """Run one organization's training node for a job until the job completes.

    Start one node per participating org, each on its own org's machine and peer: there is no coordinator.
    The node follows the contract's events on its own peer and does this org's duty in every round: train
    on its own data shard from the current version, mask and submit the update, compute the round's
    aggregate itself from the other orgs' updates (from its own peer, or for models above the job's
    endorsed_max_params from the other orgs' nodes over mutual TLS), evaluate the candidate on its own
    validation data and vote -- with its fresh X25519 key for the next round -- then close the round, which
    opens the next one. Seeds for peers that dropped out are revealed when needed. A leader that stays silent
    is covered for after --grace seconds; a round stuck past its deadlines is closed as failed.

    The round keys and every model version are kept under --workdir, so a node that crashed or was stopped
    rejoins when started again, and rebuilds (hash-checked) any version finalized while it was down.
    Transient trouble (peer unreachable, a transaction refused for now, a payload that does not check out)
    is logged and retried; the node never approves a model it could not compute itself.

    On a terminal the node shows a live status line (round, state, what it is doing) under its log;
    otherwise it prints plain log lines. Keys and update payloads are never logged.

    With --flower-client the org's trainer is its own, unchanged Flower client (a flwr NumPyClient or
    Client built by the named factory, called with a flwr Context whose node_config has partition-id and
    num-partitions); the node drives its get_parameters, fit and evaluate and still does DP, encoding,
    masking, submission, verification and voting itself. The job must take its model from the client
    (model.parameters: client in its job file).

    With --metrics-port the node serves its own Prometheus metrics (rounds, phase and duty durations,
    bytes sent and received, ledger writes, retries, the last error, the current round and phase) on
    --metrics-host (127.0.0.1 by default) and announces the URL under <run-dir>/fl/metrics/ while it runs.

    \b
    [bold]Examples[/]
      fedfabric node --org org1 --job breast-cancer
      fedfabric node --org org2 --job bc-2 --run-dir /srv/run 2>>org2.log
      fedfabric node --org org1 --job digits-flower --flower-client fedfabric.examples.flower_client:client_fn
      fedfabric node --org org3 --job bc-1 --metrics-port 9700

    [bold]Exit status.[/] 0 the job completed · 1 --timeout passed first · 2 bad input (unknown org or
    job, the org is not a participant of the job, a recipe this machine cannot follow, a Flower client that
    cannot be loaded or answers what the node cannot use, a metrics port that cannot be bound, bad config, no
    identity), with a one-line message · 3 stopped (SIGTERM) before the job completed · 130 interrupted
    (Ctrl-C).
    """
    import signal as _signal

    from .network import paths
    from .node.runtime import NodeError, NodeOptions, OrgNode
    from .node.status import StatusLine, setup_logging

    import torch

    from .node.runtime import ExchangeSettings
    from .network.layout import Layout
    from .node.exchange import NodeTls

    torch.set_num_threads(torch_threads)
    recipe_for = _node_trainer(flower_client)   # a Flower client that cannot be loaded fails before anything starts
    cfg = _config(config, run_dir)
    gw, client = _client(org, user, config, run_dir)
    o = cfg.org(org)
    root = (run_dir or paths.run_dir()).resolve()
    layout = Layout(root, cfg)
    tls_dir = layout.node_tls_dir(o)
    net = None
    if (tls_dir / "server.key").exists():
        net = ExchangeSettings(layout.node_endpoint(o), layout.node_endpoint(o),
                               NodeTls((tls_dir / "server.crt").read_bytes(), (tls_dir / "server.key").read_bytes(),
                                       {m.msp_id: layout.org_tls_ca(m).read_bytes() for m in cfg.orgs
                                        if layout.org_tls_ca(m).exists()}))
    try:
        metrics = _node_metrics(o, job, root, metrics_host, metrics_port)
    except BaseException:
        gw.close()
        raise
    status = StatusLine(o.msp_id, job)
    setup_logging(status)
    if metrics.url:
        import logging as _logging

        _logging.getLogger("fedfabric.node").info("%s metrics at %s", o.msp_id, metrics.url)
    try:
        events = gw.get_network(cfg.channel).chaincode_events("fedfabric")
        n = OrgNode(client, o.msp_id, job, workdir or root / "fl" / o.name,
                    NodeOptions(grace=grace, job_wait=wait_for_job), events=events, progress=status,
                    exchange_settings=net, recipe_for=recipe_for, metrics=metrics)
        _signal.signal(_signal.SIGTERM, lambda *_: n.stop())
        with status:
            done = n.run(timeout=timeout)
    except NodeError as exc:
        _fail(str(exc))
    except TimeoutError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail(f"interrupted; start the node again to rejoin job {job}", 130)
    finally:
        metrics.close()
        gw.close()
    if not done:
        _fail(f"stopped before job {job} completed; start the node again to rejoin", 3)
    typer.echo(f"job {job} complete")


def _node_trainer(ref: str | None) -> Any:
    """``fedfabric node --flower-client``: the node's ``recipe_for`` (None: the job's own recipe)."""
    if not ref:
        return None
    from .fl.flower import recipe_factory
    from .fl.task import TaskError

    try:
        return recipe_factory(ref)
    except TaskError as exc:
        _fail(str(exc))


def _node_metrics(org: Any, job: str, root: Path, host: str, port: int | None) -> Any:
    """``fedfabric node --metrics-port``: the node's metrics, served and announced when a port is given."""
    from .node.metrics import NodeMetrics

    metrics = NodeMetrics(org.msp_id, job, org.name)
    if port is not None:
        try:
            metrics.serve(host, port)
        except OSError as exc:
            _fail(f"cannot serve the node's metrics on {host}:{port}: {exc.strerror or exc}")
        metrics.announce(root, org.name, org.msp_id, job)
    return metrics


@app.command()
@manual
def demo(keep_network: bool = typer.Option(False, help="Leave the network running afterwards."),
         job_file: Path = typer.Option(None, help="Job file (default: 3 orgs, breast cancer, 10 secure rounds)."),
         out: Path = typer.Option(None, help="Report directory (default: reports/<job-id>)."),
         config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """The whole thing, end to end, on this machine.

    Brings up the Fabric network (3 Raft orderers, one peer and one CA per org, the fedfabric chaincode),
    records the consortium, creates a job (by default 3 orgs, breast-cancer data split non-IID, secure
    aggregation, 10 rounds), starts one training node per participating org, follows the rounds, writes
    the audit report and compares the final model with a centrally trained one, then takes the network
    down (unless --keep-network). The job file is checked in full before the network comes up; if any step
    fails, the error is printed and the network is still taken down.

    \b
    [bold]Examples[/]
      fedfabric demo
      fedfabric demo --keep-network
      fedfabric demo --job-file app/fedfabric/node/jobs/breast_cancer_dp.yaml

    [bold]Exit status.[/] 0 the job ran and the report was written · 1 a step failed (network, chaincode,
    a node, the job; the message names it) · 2 bad input (job file, consortium config).
    """
    from .network import paths
    from .network.config import ConfigError
    from .node.demo import DEFAULT_JOB, DemoError, run_demo
    from .node.jobfile import JobFileError

    try:
        run_demo(config_path=config or paths.DEFAULT_CONFIG, run_root=run_dir, job_file=job_file or DEFAULT_JOB,
                 out_dir=out, keep_network=keep_network)
    except (JobFileError, ConfigError) as exc:
        _fail(str(exc))
    except DemoError as exc:
        _fail(str(exc), 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
