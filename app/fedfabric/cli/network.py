"""``fedfabric network …``, which ``network/network.sh`` runs: bring the consortium's Fabric network up,
down, inspect it, deploy chaincode, enroll users, write connection profiles and compose files.

What a command does goes to stderr step by step; what it reports (status tables, versions, definitions)
to stdout. Its expected failures (bad config, missing binaries, a node that would not start, ...) are one
``error:`` line and exit status 2.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from . import network_org
from .common import Config, RunDir, fail, manual, said
from .network_org import NetworkSite, site

if TYPE_CHECKING:
    from ..network.deploy import ChaincodeDeployment
    from ..network.manager import SiteManager


def _expected() -> tuple[type[Exception], ...]:
    from ..network.config import ConfigError
    from ..network.definition import DefinitionError
    from ..network.enroll import EnrollError
    from ..network.fabricbin import FabricBinaryError
    from ..network.lifecycle import LifecycleError
    from ..network.nodes import NodeError
    from ..network.profile import ProfileError

    return ConfigError, DefinitionError, FabricBinaryError, LifecycleError, NodeError, EnrollError, ProfileError


class _Reported(TyperGroup):
    """The group whose commands end an expected failure with one ``error:`` line and exit status 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # noqa: BLE001 - only the expected ones are reported; the rest is a bug
            if not isinstance(exc, _expected()):
                raise
            fail(str(exc))


app = typer.Typer(
    name="network", cls=_Reported, no_args_is_help=True, rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Bring the Fabric network up, down, inspect it, deploy chaincode (same as network/network.sh).\n\n"
         "Run the fedfabric consortium's Hyperledger Fabric network as native processes on 127.0.0.1 (no "
         "Docker), derived from network/consortium.yaml. [cyan]--config[/] and [cyan]--run-dir[/] come before "
         "the command: [cyan]network/network.sh --run-dir /srv/run status[/].\n\n"
         "[bold]Environment[/]\n"
         "  FEDFABRIC_RUN_DIR     where generated state, ledgers and logs live (default: <repo>/run)\n"
         "  FEDFABRIC_CACHE       Fabric build cache (default: ~/.cache/fedfabric)\n"
         "  FEDFABRIC_FABRIC_BIN  use Fabric binaries from this directory instead of the pinned build")
app.add_typer(network_org.app, name="org")


@app.callback()
def network(ctx: typer.Context, config: Config = None, run_dir: RunDir = None) -> None:
    from ..network import paths

    ctx.obj = NetworkSite(config or paths.DEFAULT_CONFIG, run_dir)


@app.command("build")
@manual
def build(force: Annotated[bool, typer.Option("--force", help="Rebuild even when the cache is current.")] = False,
          ) -> None:
    """Build the pinned Fabric binaries.

    From the Go module proxy only (no 'direct' VCS fallback); cached, rebuilt when network/fabric.pin or the
    build script changes.
    """
    from ..network.fabricbin import build as build_fabric

    t0 = time.monotonic()
    inst = build_fabric(force=force)
    version = subprocess.run([str(inst.binary("peer")), "version"], capture_output=True, text=True).stdout
    said(f"Fabric binaries in {inst.bin_dir} ({time.monotonic() - t0:.1f}s)")
    typer.echo(version.strip())


def _deployment(net: "SiteManager", name: Optional[str] = None, version: Optional[str] = None,
                server_command: Optional[str] = None, port_offset: int = 0,
                policy: Optional[str] = None) -> "ChaincodeDeployment":
    import shlex
    from dataclasses import replace

    from ..network.deploy import product_deployment

    dep = product_deployment(net.config)
    if name:
        dep = replace(dep, name=name, collections=())
    if version:
        dep = replace(dep, version=version)
    if server_command:
        dep = replace(dep, command=tuple(shlex.split(server_command)))
    if port_offset:
        dep = replace(dep, port_offset=port_offset)
    if policy:
        dep = replace(dep, policy=policy)
    return dep


@app.command("up")
@manual
def up(ctx: typer.Context,
       no_build: Annotated[bool, typer.Option("--no-build", help="Do not build binaries; fail if missing.")] = False,
       no_deploy: Annotated[bool, typer.Option("--no-deploy", help="Only the network, no chaincode.")] = False,
       org: Annotated[Optional[list[str]], typer.Option(
           "--org", metavar="NAME",
           help="This machine holds this org (repeatable); added to what the run directory holds.")] = None,
       orderer: Annotated[bool, typer.Option("--orderer", help="This machine holds the orderer org.")] = False,
       ) -> None:
    """Bring the network up (idempotent).

    The same per-org steps a multi-host consortium takes, for every org this run directory holds (all of
    them by default; --org/--orderer for one machine of many): each org's home and public definition (`org
    init`), the genesis block built by the orderer org from the definitions only, 3 Raft orderers joined
    (osnadmin), each org's Fabric CA (signing with its CA) and peer, joined with block 0 (fetched from an
    orderer when this site has none), all health-checked, then the consortium chaincode deployed (unless
    --no-deploy). If it fails, the nodes this call started are stopped again and the error names the failed
    node and its log.
    """
    from ..network.fabricbin import build as build_fabric

    if not no_build:
        build_fabric()
    here = site(ctx)
    net = here.holding(org or [], orderer) if (org or orderer) else here.network()
    t0 = time.monotonic()
    net.up()
    if not no_deploy:
        net.deploy(_deployment(net))
    said(f"[green]network up[/green] in {time.monotonic() - t0:.1f}s "
         f"(channel '{net.config.channel}', run dir {net.layout.root})", markup=True)
    _print_status(net)


@app.command("deploy")
@manual
def deploy(ctx: typer.Context,
           name: Annotated[Optional[str], typer.Option(
               "--name", help="Chaincode name (default: chaincode.name in consortium.yaml).")] = None,
           version: Annotated[Optional[str], typer.Option(
               "--version", help="Chaincode version (default: chaincode.version).")] = None,
           server_command: Annotated[Optional[str], typer.Option(
               "--server-command", help="Command that starts one chaincode server (default: python -m "
                                        "fedfabric_cc); it reads CHAINCODE_* environment variables.")] = None,
           port_offset: Annotated[int, typer.Option(
               "--port-offset", help="Server port = the org's chaincode_server_port + this.")] = 0,
           policy: Annotated[Optional[str], typer.Option(
               "--policy", help="Signature policy (default: orgs holding chaincode.endorsement_quorum of the "
                                "stake).")] = None,
           ) -> None:
    """Deploy (or upgrade) a chaincode as a service.

    Package the chaincode as a service, install on every peer, approve per org with the stake-weighted
    endorsement policy, commit (next sequence if anything changed), start one supervised chaincode server
    per org (TLS, mutual auth); a deploy that failed half-way can be rerun (orgs that already approved are
    not asked again).
    """
    net = site(ctx).network()
    dep = _deployment(net, name, version, server_command, port_offset, policy)
    sequence = net.deploy(dep)
    said(f"[green]chaincode {dep.name!r} v{dep.version}[/green] at sequence {sequence} on "
         f"channel '{net.config.channel}', policy {dep.endorsement_policy(net.config)}", markup=True)


@app.command("enroll")
@manual
def enroll(ctx: typer.Context,
           org: Annotated[str, typer.Option("--org", show_default=False,
                                            help="The user's organization (e.g. org1 or Org1MSP).")],
           name: Annotated[str, typer.Option("--name", show_default=False,
                                             help="User name, e.g. alice (enrollment id alice@<org domain>).")],
           role: Annotated[str, typer.Option("--role", show_default=False,
                                             help="fedfabric role: auditor (read-only), trainer or admin.")],
           ) -> None:
    """Enroll a user with a fedfabric role at its org's Fabric CA.

    Register NAME@<org domain> at the org's Fabric CA (as the CA's bootstrap admin, through hfc) as a client
    with the certificate attribute fedfabric.role=ROLE, enroll it and write its MSP directory under the run
    dir's users/, so every --user NAME option and fedfabric.connect.connect(org, NAME) can act as it.
    Idempotent: an existing user with the same role is left as it is.
    """
    from ..network.enroll import enroll as enroll_user

    net = site(ctx).network()
    res = enroll_user(org, name, role, config=net.config, run_root=net.layout.root)
    if res.created:
        said(f"enrolled {res.enrollment_id} at {res.ca}: type client, fedfabric.role={res.role}")
    else:
        said(f"{res.enrollment_id} is already enrolled with fedfabric.role={res.role}: nothing to do")
    said(f"MSP: {res.msp_dir}  (act as it with --org {res.org} --user {res.name})")


@app.command("profile")
@manual
def profile(ctx: typer.Context,
            org: Annotated[str, typer.Option("--org", show_default=False,
                                             help="The org whose view the profile is (e.g. org1 or Org1MSP).")],
            out: Annotated[Path, typer.Option("--out", show_default=False,
                                              help="Output directory (created; our files in it are replaced).")],
            user: Annotated[str, typer.Option("--user", help="Identity the profile is for: User1 (trainer), Admin, "
                                                             "Auditor, or a user added with `enroll`.")] = "User1",
            ) -> None:
    """Write a connection profile of one org for one identity.

    Write OUT/connection-<org>.json and OUT/connection-<org>.yaml: the common connection profile the Fabric
    SDKs read -- organizations with mspid, peers and CAs; every org's peer and every orderer with its
    grpcs:// URL, its TLS CA certificate (inline, and as a file under OUT/tls/) and TLS host name; the org's
    Fabric CA. Beside it, OUT/identity-<user>.json (MSP id, certificate, path of the private key) and
    OUT/msp/ (the identity's MSP for the peer CLI; its keystore holds a symbolic link to the key). The
    private key stays in the run directory and is never copied; a key file readable by group or others is
    refused. Needs the crypto material only (network.sh up or generate), not running nodes. With it the
    official gateway clients, hfc and the peer CLI connect without reading the run directory.

    \b
    [bold]Examples[/]
      network/network.sh profile --org org1 --out profiles/org1
      network/network.sh profile --org org2 --user bob --out profiles/bob     # after `enroll --name bob`
      fedfabric network profile --org org1 --out profiles/org1                # the same

    \b
      # the peer CLI, with settings from the profile only
      export FABRIC_CFG_PATH=<dir with Fabric's default core.yaml> CORE_PEER_TLS_ENABLED=true
      export CORE_PEER_ADDRESS=127.0.0.1:7051 CORE_PEER_LOCALMSPID=Org1MSP
      export CORE_PEER_TLS_ROOTCERT_FILE=profiles/org1/tls/tlsca.org1.fedfabric.local-cert.pem
      export CORE_PEER_MSPCONFIGPATH=profiles/org1/msp
      peer channel getinfo -c fl

    [bold]Exit status.[/] 0 written · 2 unknown org or user, crypto material missing, or the key readable by
    others.
    """
    from ..network.profile import write_profile

    net = site(ctx).network()
    files = write_profile(net.layout, org, user, out)
    for label, path in (("connection profile", files.json), ("connection profile", files.yaml),
                        ("identity", files.identity), ("certificate", files.certificate),
                        ("MSP (keystore: a link)", files.msp_dir), ("private key (not copied)", files.private_key)):
        said(f"{label}: {path}")


@app.command("generate")
def generate(ctx: typer.Context) -> None:
    """Crypto material, genesis block, CA configs only (what docker compose mounts)."""
    net = site(ctx).network()
    net.generate()
    said(f"generated crypto material, node configuration and genesis block in {net.layout.root}")


def _compose_orgs(net: "SiteManager", orgs: list[str], orderer: bool) -> list[str]:
    """The orgs ``compose`` writes files for: those named (each held by this site), else all it holds."""
    from ..network.config import ConfigError

    oo = net.config.orderer_org.name
    held = ([oo] if net.hosts_orderer else []) + [o.name for o in net.local_orgs]
    if not (orgs or orderer):
        return held
    named = [oo] if orderer else []
    for name in orgs:
        named.append(oo if name in (oo, net.config.orderer_org.msp_id) else net.config.org(name).name)
    for name in named:
        if name not in held:
            raise ConfigError(f"{name} is not an org of this site ({net.layout.root} holds "
                              f"{', '.join(held) or 'none'}): write its file on its own host, where its home is "
                              f"(`network.sh compose --org {name}` there)")
    return list(dict.fromkeys(named))


@app.command("compose")
@manual
def compose(ctx: typer.Context,
            org: Annotated[Optional[list[str]], typer.Option(
                "--org", metavar="ORG", help="Only this org's file (repeatable; an org this run directory holds; "
                                             "the orderer org by its name).")] = None,
            orderer: Annotated[bool, typer.Option("--orderer", help="Only the orderer org's file.")] = False,
            out: Annotated[Optional[Path], typer.Option(
                "--out", metavar="DIR", help="Directory of the per-org files (default: <run dir>/compose).")] = None,
            output: Annotated[Optional[Path], typer.Option(
                "--output", metavar="FILE",
                help="Where the single-machine aggregate goes (default: docker-compose-fabric.yml at the top of "
                     "the checkout, written when the site holds every org and --org/--orderer are not "
                     "given).")] = None,
            ) -> None:
    """Per-org compose files (one per host) and the single-machine aggregate.

    Write one compose file per org this run directory holds, for the host that org runs on: DIR/<org>.yml
    (default DIR: <run dir>/compose). The orderer org's file has its orderers, a peer org's its peer and its
    Fabric CA, each service the native node of `network.sh up` (same environment, ports, TLS on every
    listener) in Fabric's image, with host networking on the org's address from the consortium file. Each
    container mounts only its own node's directories of that org's home: its MSP and TLS directory
    read-only, its data directory read-write, Fabric's node config read-only (the orderers also the orderer
    org's public definition) -- never another org's files, nor the org's CA or admin keys in a peer's
    container. Containers run as FEDFABRIC_UID:FEDFABRIC_GID, the owner of the run directory. The data
    directories are created here (0700) when the org's home exists. The file's header says, step by step,
    how to run it on that host.

    The chaincode server and training node stay native Python processes of the checkout: `network.sh
    up`/`deploy` start and supervise the chaincode server (its id is the installed package's and changes
    with every version).

    On a site holding every org and the orderer org, also writes docker-compose-fabric.yml (--output): all
    the orgs' services together, for one machine. Nothing is started.

    \b
    [bold]Examples[/]
      network/network.sh compose                       # this site's orgs; the aggregate when it holds them all
      network/network.sh compose --org org1            # run/compose/org1.yml, on org1's host
      network/network.sh compose --orderer --out /srv/fedfabric/compose
      export FEDFABRIC_UID=$(id -u) FEDFABRIC_GID=$(id -g) && docker compose -f run/compose/org1.yml up -d

    [bold]Exit status.[/] 0 written · 2 an org this run directory does not hold, or --output on a site
    without every org.
    """
    from ..network import compose as files
    from ..network.config import ConfigError

    net = site(ctx).network()
    names = _compose_orgs(net, org or [], orderer)
    out_dir = out or files.default_dir(net.layout)
    for name in names:
        path = files.write(out_dir / f"{name}.yml", files.render_org(net.config, net.layout, name,
                                                                    out_dir / f"{name}.yml"))
        missing = files.prepare(net.config, net.layout, name)
        note = "" if not missing else (f" -- not there yet: {', '.join(str(m) for m in missing[:3])}"
                                       f"{' ...' if len(missing) > 3 else ''}; run `network.sh generate` and then "
                                       "`compose` again before `docker compose up`")
        said(f"wrote {path} ({name}: {', '.join(files.services(net.config, net.layout, name, out_dir))}){note}")
    whole = net.hosts_orderer and len(net.local_orgs) == len(net.config.orgs)
    if output or not (org or orderer):
        if not whole:
            if output:
                raise ConfigError(f"--output: this site holds {', '.join(names) or 'no org'}, not the whole "
                                  "consortium; docker-compose-fabric.yml is the single-machine aggregate")
            return
        path = output or files.AGGREGATE
        files.write(path, files.render_consortium(net.config, net.layout, path))
        said(f"wrote {path} (every org's services, for one machine)")


@app.command("down")
@manual
def down(ctx: typer.Context,
         keep: Annotated[bool, typer.Option("--keep", help="Stop processes but keep the run directory.")] = False,
         ) -> None:
    """Stop the network and remove its state.

    Stop exactly the processes 'up' started (each node's whole process group: SIGTERM, SIGKILL after 15 s,
    waited for) and remove the run directory.
    """
    net = site(ctx).network()
    t0 = time.monotonic()
    stopped = net.down(keep_state=keep)
    said(f"[green]network down[/green]: {len(stopped)} process(es) stopped in {time.monotonic() - t0:.1f}s",
         markup=True)


def _table(title: str, *cols: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for col in cols:
        table.add_column(col, overflow="fold")
    return table


def _print(table: Any) -> None:
    from rich.console import Console

    Console(width=max(Console().width, 180)).print(table)


def _print_status(net: "SiteManager") -> bool:
    """Every node's status as a table, then the training nodes' metrics endpoints; True if every node is up."""
    table = _table(f"fedfabric network — channel '{net.config.channel}'",
                   "node", "kind", "state", "pid", "ports", "height", "health", "metrics")
    statuses = net.status()
    for s in statuses:
        ports = " ".join(f"{k}={v}" for k, v in s.ports.items())
        table.add_row(s.node_id, s.kind, "[green]up[/green]" if s.up else "[red]down[/red]",
                      str(s.pid or "-"), ports, "-" if s.height is None else str(s.height), s.health,
                      s.metrics or "-")
    _print(table)
    _print_node_metrics(net.layout.root)
    return all(s.up for s in statuses)


def _print_node_metrics(root: Path) -> None:
    """The training nodes' own metrics endpoints (``fedfabric node --metrics-port``) announced in ``root``."""
    from ..node.metrics import known_endpoints

    found = known_endpoints(root)
    if not found:
        typer.echo(f"training nodes' metrics: none announced (fedfabric node --metrics-port N serves them; "
                   f"running nodes are listed from {root / 'fl' / 'metrics'})")
        return
    table = _table("training nodes (fedfabric node --metrics-port)", "org", "job", "state", "pid", "metrics")
    for e in found:
        table.add_row(str(e.get("org")), str(e.get("job")), "[green]up[/green]" if e["up"] else "[red]gone[/red]",
                      str(e.get("pid") or "-"), e["url"])
    _print(table)


@app.command("status")
@manual
def status(ctx: typer.Context) -> None:
    """Show every node.

    A table of every node (orderers, peers, CAs, chaincode servers): up/down, pid, ports, channel block
    height, and the Prometheus endpoint of each orderer, peer and CA (https://127.0.0.1:<operations
    port>/metrics, TLS; peers and orderers answer only a TLS client certificate of their own org, e.g.
    orgs/<org>/crypto/.../users/Admin@<domain>/tls/); then the training nodes' own endpoints
    (http://127.0.0.1:<port>/metrics) that nodes started with --metrics-port announced in <run>/fl/metrics/.

    [bold]Exit status.[/] 0 every node is up · 3 some node is down.
    """
    if not _print_status(site(ctx).network()):
        raise typer.Exit(3)


@app.command("logs")
def logs(ctx: typer.Context,
         node: Annotated[Optional[str], typer.Argument(help="Node id, e.g. orderer1 or peer0.org1 (default: every "
                                                            "node).", show_default=False)] = None,
         lines: Annotated[int, typer.Option("-n", "--lines", help="How many last lines.")] = 50,
         follow: Annotated[bool, typer.Option("-f", "--follow", help="Follow the logs as they grow.")] = False,
         ) -> None:
    """Show node logs: the last lines of a node's log (all nodes without NODE); -f follows."""
    from ..network.nodes import NodeError

    net = site(ctx).network()
    files = [net.log_path(n) for n in ([node] if node else [s.node_id for s in net.specs()])]
    there = [str(f) for f in files if f.exists()]
    if node and not there:
        raise NodeError(f"no log yet for {node} ({files[0]})")
    if not there:
        said("no logs yet (is the network up?)")
        raise typer.Exit(1)
    os.execvp("tail", ["tail", "-n", str(lines), *(["-F"] if follow else []), *there])
