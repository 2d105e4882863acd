"""``fedfabric node``: one organization's training node for a job."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import EXIT_FAILED, Config, RunDir, User, Where, fail, ledger, manual, where


@manual
def node(org: Annotated[str, typer.Option("--org", help="The organization this node trains for (e.g. org1).",
                                          show_default=False)],
         job: Annotated[str, typer.Option("--job", help="The job to follow.", show_default=False)],
         user: User = "User1", config: Config = None, run_dir: RunDir = None,
         workdir: Annotated[Optional[Path], typer.Option(
             "--workdir", help="Where keys and models live (default <run-dir>/fl/<org>).")] = None,
         grace: Annotated[float, typer.Option(
             "--grace", help="Seconds to wait before covering for a silent round leader.")] = 4.0,
         timeout: Annotated[Optional[float], typer.Option("--timeout", help="Give up after this many seconds.")] = None,
         wait_for_job: Annotated[float, typer.Option(
             "--wait-for-job", help="Seconds to wait for the job to reach this org's peer.")] = 10.0,
         torch_threads: Annotated[int, typer.Option(
             "--torch-threads", min=1, help="CPU threads torch may use (co-located nodes share the cores).")] = 1,
         flower_client: Annotated[Optional[str], typer.Option(
             "--flower-client", metavar="MODULE:FACTORY",
             help="Train with this Flower client (package.module:factory, e.g. the client_fn of a ClientApp) "
                  "instead of the job's own recipe; needs flwr (the flower extra).")] = None,
         metrics_port: Annotated[Optional[int], typer.Option(
             "--metrics-port", min=0, max=65535,
             help="Serve this node's Prometheus metrics at /metrics on this port (0: a free one; the URL is "
                  "logged and listed by network.sh status).")] = None,
         metrics_host: Annotated[str, typer.Option(
             "--metrics-host", help="Address the metrics endpoint listens on.")] = "127.0.0.1",
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
    import logging
    import signal

    import torch

    from ..node.runtime import NodeError, NodeOptions, OrgNode
    from ..node.status import StatusLine, setup_logging

    torch.set_num_threads(torch_threads)
    recipe_for = _trainer(flower_client)   # a Flower client that cannot be loaded fails before anything starts
    here = where(org, config, run_dir)
    with ledger(here, user) as s:
        metrics = _metrics(here, job, metrics_host, metrics_port)
        status = StatusLine(here.org.msp_id, job)
        setup_logging(status)
        if metrics.url:
            logging.getLogger("fedfabric.node").info("%s metrics at %s", here.org.msp_id, metrics.url)
        try:
            events = s.gateway.get_network(here.config.channel).chaincode_events("fedfabric")
            n = OrgNode(s.client, here.org.msp_id, job, workdir or here.run_dir / "fl" / here.org.name,
                        NodeOptions(grace=grace, job_wait=wait_for_job), events=events, progress=status,
                        exchange_settings=_exchange(here), recipe_for=recipe_for, metrics=metrics)
            signal.signal(signal.SIGTERM, lambda *_: n.stop())
            with status:
                done = n.run(timeout=timeout)
        except NodeError as exc:
            fail(str(exc))
        except TimeoutError as exc:
            fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            fail(f"interrupted; start the node again to rejoin job {job}", 130)
        finally:
            metrics.close()
    if not done:
        fail(f"stopped before job {job} completed; start the node again to rejoin", 3)
    typer.echo(f"job {job} complete")


def _trainer(ref: Optional[str]) -> Any:
    """``--flower-client``: the node's ``recipe_for`` (None: the job's own recipe)."""
    if not ref:
        return None
    from ..fl.flower import recipe_factory
    from ..fl.task import TaskError

    try:
        return recipe_factory(ref)
    except TaskError as exc:
        fail(str(exc))


def _exchange(here: Where) -> Any:
    """How this node serves and fetches payloads over mutual TLS, when the network gave it TLS material."""
    from ..node.exchange import NodeTls
    from ..node.runtime import ExchangeSettings

    layout, o = here.layout, here.org
    tls_dir = layout.node_tls_dir(o)
    if not (tls_dir / "server.key").exists():
        return None
    return ExchangeSettings(layout.node_endpoint(o), layout.node_endpoint(o),
                            NodeTls((tls_dir / "server.crt").read_bytes(), (tls_dir / "server.key").read_bytes(),
                                    {m.msp_id: layout.org_tls_ca(m).read_bytes() for m in here.config.orgs
                                     if layout.org_tls_ca(m).exists()}))


def _metrics(here: Where, job: str, host: str, port: Optional[int]) -> Any:
    """``--metrics-port``: the node's metrics, served and announced when a port is given."""
    from ..node.metrics import NodeMetrics

    o = here.org
    metrics = NodeMetrics(o.msp_id, job, o.name)
    if port is not None:
        try:
            metrics.serve(host, port)
        except OSError as exc:
            fail(f"cannot serve the node's metrics on {host}:{port}: {exc.strerror or exc}")
        metrics.announce(here.run_dir, o.name, o.msp_id, job)
    return metrics
