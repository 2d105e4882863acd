"""Command line behind ``network/network.sh``: bring the consortium network up, down, inspect it."""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import replace
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import paths
from . import cli_orgs
from .config import ConfigError, load_config
from .definition import DefinitionError
from .fabricbin import FabricBinaryError, build
from .deploy import ChaincodeDeployment, product_deployment
from .enroll import EnrollError
from .manager import Network
from .nodes import NodeError
from .profile import ProfileError, write_profile

console = Console(stderr=True)

EPILOG = """\
commands:
  build            build the pinned Fabric binaries from the Go module proxy only (no 'direct' VCS
                   fallback); cached, rebuilt when network/fabric.pin or the build script changes
  up               the same per-org steps a multi-host consortium takes, for every org this run directory
                   holds (all of them by default; --org/--orderer for one machine of many): each org's
                   home and public definition (`org init`), the genesis block built by the orderer org from
                   the definitions only, 3 Raft orderers joined (osnadmin), each org's Fabric CA (signing
                   with its CA) and peer, joined with block 0 (fetched from an orderer when this site has
                   none), all health-checked, then the consortium chaincode deployed (unless --no-deploy);
                   if it fails, the nodes this call started are stopped again and the error names the
                   failed node and its log
  org              org-side steps on an org's own machine: init its home, print its definition, import
                   the other orgs' definitions (`network.sh org --help`)
  deploy           package the chaincode as a service, install on every peer, approve per org with the
                   stake-weighted endorsement policy, commit (next sequence if anything changed),
                   start one supervised chaincode server per org (TLS, mutual auth); a deploy that failed
                   half-way can be rerun (orgs that already approved are not asked again)
  enroll           register and enroll a user at its org's Fabric CA (hfc) as a client with the attribute
                   fedfabric.role=<auditor|trainer|admin>; writes its MSP under the run dir's users/, so
                   every --user NAME option and fedfabric.connect(org, NAME) can act as it
  profile          write a Fabric connection profile (JSON and YAML) of one org for one identity, with
                   the identity's certificate, an MSP directory and the path of its private key (never
                   copied: the MSP's keystore holds a link), so the official gateway clients, hfc and
                   the peer CLI can connect without reading the run directory
  generate         crypto material, genesis block and CA configs only (what docker compose mounts)
  compose          per-org compose files, one per host: <run dir>/compose/<org>.yml with the orderer
                   org's orderers or a peer org's peer and Fabric CA as containers (host networking, the
                   org's own address), each mounting only its own node's directories of that org's home;
                   on a site holding the whole consortium also docker-compose-fabric.yml, all of them
                   together (`network.sh compose --help`)
  down             stop exactly the processes 'up' started (each node's whole process group: SIGTERM,
                   SIGKILL after 15 s, waited for) and remove the run directory
  status           table of every node (orderers, peers, CAs, chaincode servers): up/down, pid, ports,
                   channel block height, and the Prometheus endpoint of each orderer, peer and CA
                   (https://127.0.0.1:<operations port>/metrics, TLS; peers and orderers answer only a
                   TLS client certificate of their own org, e.g. orgs/<org>/crypto/.../users/Admin@<domain>/tls/);
                   then the training nodes' own endpoints (http://127.0.0.1:<port>/metrics) that nodes
                   started with --metrics-port announced in <run>/fl/metrics/
  logs [NODE]      last lines of a node's log (all nodes without NODE); -f follows

environment:
  FEDFABRIC_RUN_DIR     where generated state, ledgers and logs live (default: <repo>/run)
  FEDFABRIC_CACHE       Fabric build cache (default: ~/.cache/fedfabric)
  FEDFABRIC_FABRIC_BIN  use Fabric binaries from this directory instead of the pinned build
"""


def _network(args: argparse.Namespace, orgs: list[str] | None = None, orderer: bool | None = None) -> Network:
    """The site of ``--run-dir``: the orgs it holds (remembered), or ``orgs`` / ``orderer`` when given."""
    return Network(load_config(args.config), Path(args.run_dir) if args.run_dir else None,
                   report=lambda m: console.print(f"[dim]•[/dim] {m}", markup=True, highlight=False),
                   orgs=orgs, orderer=orderer)


def cmd_build(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    inst = build(force=args.force)
    version = subprocess.run([str(inst.binary("peer")), "version"], capture_output=True, text=True).stdout
    console.print(f"Fabric binaries in {inst.bin_dir} ({time.monotonic() - t0:.1f}s)")
    print(version.strip())
    return 0


def _deployment(args: argparse.Namespace, net: Network) -> ChaincodeDeployment:
    dep = product_deployment(net.config)
    if getattr(args, "name", None):
        dep = replace(dep, name=args.name, collections=())
    if getattr(args, "version", None):
        dep = replace(dep, version=args.version)
    if getattr(args, "server_command", None):
        dep = replace(dep, command=tuple(shlex.split(args.server_command)))
    if getattr(args, "port_offset", None):
        dep = replace(dep, port_offset=args.port_offset)
    if getattr(args, "policy", None):
        dep = replace(dep, policy=args.policy)
    return dep


def cmd_up(args: argparse.Namespace) -> int:
    if not args.no_build:
        build()
    net = cli_orgs.holding(_network, args, args.org or [], args.orderer) if (args.org or args.orderer) \
        else _network(args)
    t0 = time.monotonic()
    net.up()
    if not args.no_deploy:
        net.deploy(_deployment(args, net))
    console.print(f"[green]network up[/green] in {time.monotonic() - t0:.1f}s "
                  f"(channel '{net.config.channel}', run dir {net.layout.root})")
    _print_status(net)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    net = _network(args)
    dep = _deployment(args, net)
    sequence = net.deploy(dep)
    console.print(f"[green]chaincode {dep.name!r} v{dep.version}[/green] at sequence {sequence} on "
                  f"channel '{net.config.channel}', policy {dep.endorsement_policy(net.config)}")
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from .enroll import enroll

    net = _network(args)
    res = enroll(args.org, args.name, args.role, config=net.config, run_root=net.layout.root)
    if res.created:
        console.print(f"enrolled {res.enrollment_id} at {res.ca}: type client, fedfabric.role={res.role}",
                      markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"{res.enrollment_id} is already enrolled with fedfabric.role={res.role}: nothing to do",
                      markup=False, highlight=False, soft_wrap=True)
    console.print(f"MSP: {res.msp_dir}  (act as it with --org {res.org} --user {res.name})",
                  markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    net = _network(args)
    files = write_profile(net.layout, args.org, args.user, Path(args.out))
    for label, path in (("connection profile", files.json), ("connection profile", files.yaml),
                        ("identity", files.identity), ("certificate", files.certificate),
                        ("MSP (keystore: a link)", files.msp_dir), ("private key (not copied)", files.private_key)):
        console.print(f"{label}: {path}", markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    net = _network(args)
    net.generate()
    console.print(f"generated crypto material, node configuration and genesis block in {net.layout.root}")
    return 0


def _compose_orgs(args: argparse.Namespace, net: Network) -> list[str]:
    """The orgs ``compose`` writes files for: those named (each held by this site), else all it holds."""
    oo = net.config.orderer_org.name
    held = ([oo] if net.hosts_orderer else []) + [o.name for o in net.local_orgs]
    if not (args.org or args.orderer):
        return held
    named = [oo] if args.orderer else []
    for name in args.org or []:
        named.append(oo if name in (oo, net.config.orderer_org.msp_id) else net.config.org(name).name)
    for name in named:
        if name not in held:
            raise ConfigError(f"{name} is not an org of this site ({net.layout.root} holds "
                              f"{', '.join(held) or 'none'}): write its file on its own host, where its home is "
                              f"(`network.sh compose --org {name}` there)")
    return list(dict.fromkeys(named))


def cmd_compose(args: argparse.Namespace) -> int:
    from . import compose

    net = _network(args)
    names = _compose_orgs(args, net)
    out_dir = Path(args.out) if args.out else compose.default_dir(net.layout)
    for name in names:
        path = compose.write(out_dir / f"{name}.yml", compose.render_org(net.config, net.layout, name,
                                                                        out_dir / f"{name}.yml"))
        missing = compose.prepare(net.config, net.layout, name)
        note = "" if not missing else (f" -- not there yet: {', '.join(str(m) for m in missing[:3])}"
                                       f"{' ...' if len(missing) > 3 else ''}; run `network.sh generate` and then "
                                       "`compose` again before `docker compose up`")
        console.print(f"wrote {path} ({name}: {', '.join(compose.services(net.config, net.layout, name, out_dir))})"
                      f"{note}", markup=False, highlight=False, soft_wrap=True)
    whole = net.hosts_orderer and len(net.local_orgs) == len(net.config.orgs)
    if args.output or not (args.org or args.orderer):
        if not whole:
            if args.output:
                raise ConfigError(f"--output: this site holds {', '.join(names) or 'no org'}, not the whole "
                                  "consortium; docker-compose-fabric.yml is the single-machine aggregate")
            return 0
        path = Path(args.output) if args.output else compose.AGGREGATE
        compose.write(path, compose.render_consortium(net.config, net.layout, path))
        console.print(f"wrote {path} (every org's services, for one machine)", markup=False, highlight=False,
                      soft_wrap=True)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    net = _network(args)
    t0 = time.monotonic()
    stopped = net.down(keep_state=args.keep)
    console.print(f"[green]network down[/green]: {len(stopped)} process(es) stopped "
                  f"in {time.monotonic() - t0:.1f}s")
    return 0


def _print_status(net: Network) -> bool:
    table = Table(title=f"fedfabric network — channel '{net.config.channel}'")
    for col in ("node", "kind", "state", "pid", "ports", "height", "health", "metrics"):
        table.add_column(col, overflow="fold")
    statuses = net.status()
    for s in statuses:
        ports = " ".join(f"{k}={v}" for k, v in s.ports.items())
        table.add_row(s.node_id, s.kind, "[green]up[/green]" if s.up else "[red]down[/red]",
                      str(s.pid or "-"), ports, "-" if s.height is None else str(s.height), s.health,
                      s.metrics or "-")
    Console(width=max(Console().width, 180)).print(table)
    _print_node_metrics(net.layout.root)
    return all(s.up for s in statuses)


def _print_node_metrics(root: Path) -> None:
    """The training nodes' own metrics endpoints (``fedfabric node --metrics-port``) announced in ``root``."""
    from ..node.metrics import known_endpoints

    found = known_endpoints(root)
    if not found:
        Console().print(f"training nodes' metrics: none announced (fedfabric node --metrics-port N serves them; "
                        f"running nodes are listed from {root / 'fl' / 'metrics'})")
        return
    table = Table(title="training nodes (fedfabric node --metrics-port)")
    for col in ("org", "job", "state", "pid", "metrics"):
        table.add_column(col, overflow="fold")
    for e in found:
        table.add_row(str(e.get("org")), str(e.get("job")), "[green]up[/green]" if e["up"] else "[red]gone[/red]",
                      str(e.get("pid") or "-"), e["url"])
    Console(width=max(Console().width, 180)).print(table)


def cmd_status(args: argparse.Namespace) -> int:
    return 0 if _print_status(_network(args)) else 3


def cmd_logs(args: argparse.Namespace) -> int:
    net = _network(args)
    targets = [args.node] if args.node else [s.node_id for s in net.specs()]
    files = [net.log_path(n) for n in targets]
    missing = [str(f) for f in files if not f.exists()]
    if args.node and missing:
        raise NodeError(f"no log yet for {args.node} ({missing[0]})")
    cmd = ["tail", "-n", str(args.lines)] + (["-F"] if args.follow else []) + \
          [str(f) for f in files if f.exists()]
    if len(cmd) == 3 + (1 if args.follow else 0):
        console.print("no logs yet (is the network up?)")
        return 1
    os.execvp("tail", cmd)
    return 0  # pragma: no cover


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="network.sh",
        description="Run the fedfabric consortium's Hyperledger Fabric network as native processes on "
                    "127.0.0.1 (no Docker), derived from network/consortium.yaml.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(paths.DEFAULT_CONFIG), help="consortium file (default: %(default)s)")
    p.add_argument("--run-dir", default=None, help="run directory (default: $FEDFABRIC_RUN_DIR or <repo>/run)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser("build", help="build the pinned Fabric binaries")
    b.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    b.set_defaults(func=cmd_build)
    u = sub.add_parser("up", help="bring the network up (idempotent)")
    u.add_argument("--no-build", action="store_true", help="do not build binaries; fail if missing")
    u.add_argument("--no-deploy", action="store_true", help="only the network, no chaincode")
    u.add_argument("--org", action="append", metavar="NAME",
                   help="this machine holds this org (repeatable); added to what the run directory holds")
    u.add_argument("--orderer", action="store_true", help="this machine holds the orderer org")
    u.set_defaults(func=cmd_up)
    dp = sub.add_parser("deploy", help="deploy (or upgrade) a chaincode as a service")
    dp.add_argument("--name", help="chaincode name (default: chaincode.name in consortium.yaml)")
    dp.add_argument("--version", help="chaincode version (default: chaincode.version)")
    dp.add_argument("--server-command", help="command that starts one chaincode server "
                    "(default: python -m fedfabric_cc); it reads CHAINCODE_* environment variables")
    dp.add_argument("--port-offset", type=int, default=0,
                    help="server port = the org's chaincode_server_port + this")
    dp.add_argument("--policy", help="signature policy (default: orgs holding chaincode.endorsement_quorum "
                    "of the stake)")
    dp.set_defaults(func=cmd_deploy)
    en = sub.add_parser("enroll", help="enroll a user with a fedfabric role at its org's Fabric CA",
                        description="Register NAME@<org domain> at the org's Fabric CA (as the CA's bootstrap "
                                    "admin, through hfc) as a client with the certificate attribute "
                                    "fedfabric.role=ROLE, enroll it and write its MSP directory under the run "
                                    "dir. Idempotent: an existing user with the same role is left as it is.")
    en.add_argument("--org", required=True, help="the user's organization (e.g. org1 or Org1MSP)")
    en.add_argument("--name", required=True, help="user name, e.g. alice (enrollment id alice@<org domain>)")
    en.add_argument("--role", required=True, help="fedfabric role: auditor (read-only), trainer or admin")
    en.set_defaults(func=cmd_enroll)
    pf = sub.add_parser(
        "profile", help="write a connection profile of one org for one identity",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Write OUT/connection-<org>.json and OUT/connection-<org>.yaml: the common connection profile the
Fabric SDKs read -- organizations with mspid, peers and CAs; every org's peer and every orderer with
its grpcs:// URL, its TLS CA certificate (inline, and as a file under OUT/tls/) and TLS host name;
the org's Fabric CA. Beside it, OUT/identity-<user>.json (MSP id, certificate, path of the private
key) and OUT/msp/ (the identity's MSP for the peer CLI; its keystore holds a symbolic link to the
key). The private key stays in the run directory and is never copied; a key file readable by group
or others is refused. Needs the crypto material only (network.sh up or generate), not running nodes.
""",
        epilog="""\
examples:
  network/network.sh profile --org org1 --out profiles/org1
  network/network.sh profile --org org2 --user bob --out profiles/bob     # after `enroll --name bob`
  fedfabric network profile --org org1 --out profiles/org1                # the same

  # the peer CLI, with settings from the profile only
  export FABRIC_CFG_PATH=<dir with Fabric's default core.yaml> CORE_PEER_TLS_ENABLED=true
  export CORE_PEER_ADDRESS=127.0.0.1:7051 CORE_PEER_LOCALMSPID=Org1MSP
  export CORE_PEER_TLS_ROOTCERT_FILE=profiles/org1/tls/tlsca.org1.fedfabric.local-cert.pem
  export CORE_PEER_MSPCONFIGPATH=profiles/org1/msp
  peer channel getinfo -c fl

exit status:
  0 written · 2 unknown org or user, crypto material missing, or the key readable by others
""")
    pf.add_argument("--org", required=True, help="the org whose view the profile is (e.g. org1 or Org1MSP)")
    pf.add_argument("--user", default="User1",
                    help="identity the profile is for: User1 (trainer, default), Admin, Auditor, or a user "
                         "added with `enroll`")
    pf.add_argument("--out", required=True, help="output directory (created; our files in it are replaced)")
    pf.set_defaults(func=cmd_profile)
    sub.add_parser("generate", help="crypto material, genesis block, CA configs only (for docker compose)"
                   ).set_defaults(func=cmd_generate)
    cli_orgs.register(sub, _network)
    cp = sub.add_parser(
        "compose", help="per-org compose files (one per host) and the single-machine aggregate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Write one compose file per org this run directory holds, for the host that org runs on:
DIR/<org>.yml (default DIR: <run dir>/compose). The orderer org's file has its orderers, a peer
org's its peer and its Fabric CA, each service the native node of `network.sh up` (same environment,
ports, TLS on every listener) in Fabric's image, with host networking on the org's address from the
consortium file. Each container mounts only its own node's directories of that org's home: its MSP
and TLS directory read-only, its data directory read-write, Fabric's node config read-only (the
orderers also the orderer org's public definition) -- never another org's files, nor the org's CA or
admin keys in a peer's container. Containers run as FEDFABRIC_UID:FEDFABRIC_GID, the owner of the run
directory. The data directories are created here (0700) when the org's home exists. The file's
header says, step by step, how to run it on that host.

The chaincode server and training node stay native Python processes of the checkout: `network.sh
up`/`deploy` start and supervise the chaincode server (its id is the installed package's and changes
with every version).

On a site holding every org and the orderer org, also writes docker-compose-fabric.yml (--output):
all the orgs' services together, for one machine. Nothing is started.
""",
        epilog="""\
examples:
  network/network.sh compose                       # this site's orgs; the aggregate when it holds them all
  network/network.sh compose --org org1            # run/compose/org1.yml, on org1's host
  network/network.sh compose --orderer --out /srv/fedfabric/compose
  export FEDFABRIC_UID=$(id -u) FEDFABRIC_GID=$(id -g) && docker compose -f run/compose/org1.yml up -d

exit status:
  0 written · 2 an org this run directory does not hold, or --output on a site without every org
""")
    cp.add_argument("--org", action="append", metavar="ORG",
                    help="only this org's file (repeatable; an org this run directory holds; the orderer org "
                         "by its name)")
    cp.add_argument("--orderer", action="store_true", help="only the orderer org's file")
    cp.add_argument("--out", metavar="DIR", help="directory of the per-org files (default: <run dir>/compose)")
    cp.add_argument("--output", metavar="FILE",
                    help="where the single-machine aggregate goes (default: docker-compose-fabric.yml at the "
                         "top of the checkout, written when the site holds every org and --org/--orderer are not "
                         "given)")
    cp.set_defaults(func=cmd_compose)
    d = sub.add_parser("down", help="stop the network and remove its state")
    d.add_argument("--keep", action="store_true", help="stop processes but keep the run directory")
    d.set_defaults(func=cmd_down)
    sub.add_parser("status", help="show every node").set_defaults(func=cmd_status)
    lg = sub.add_parser("logs", help="show node logs")
    lg.add_argument("node", nargs="?", help="node id, e.g. orderer1 or peer0.org1")
    lg.add_argument("-n", "--lines", type=int, default=50)
    lg.add_argument("-f", "--follow", action="store_true")
    lg.set_defaults(func=cmd_logs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DefinitionError, FabricBinaryError, NodeError, EnrollError, ProfileError) as exc:
        console.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
