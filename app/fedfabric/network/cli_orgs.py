"""``network.sh org ...``: the org-side commands of a multi-host consortium (init, definition, import,
retire).

Each org runs ``org init`` on its own machine: its keys never leave its home there. What it sends the
others is its definition (``org definition``); what it receives from them, it checks and imports
(``org import``). ``network.sh up`` then starts exactly the nodes of the orgs the run directory holds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Callable

import yaml
from rich.console import Console

from . import definition, nodes
from .config import ConfigError, parse_org
from .manager import Network

console = Console(stderr=True)
NetworkFactory = Callable[..., Network]

ORG_EPILOG = """\
commands:
  init         initialize one org's home in this run directory (this machine: its site): cryptogen for
               that org alone (CA and TLS CA key pairs, MSP with node OUs, peer, Admin, User1, User2),
               the Auditor identity, TLS certificates of its Fabric CA and training node, the Fabric CA's
               bootstrap admin password and server config -- every key 0600 in a 0700 directory under
               orgs/<org>/ and nowhere else -- then its public definition
  definition   print an org's public definition, or write it to --out (the file to send the others)
  import       check other orgs' definitions (format, certificates, this consortium's domain, no
               private key) and add them to this site's public/ directory (an org admitted by
               governance: `fedfabric org --help`)
  retire       leave an org removed from the channel by governance out of this site's view of the
               consortium (its definition is kept under public/retired/); `fedfabric org sign` and
               `submit` do this themselves on the sites they run on

A multi-host consortium, step by step (each line on the machine named first):

  org1-host$ network/network.sh org init --org org1 && network/network.sh org definition --org org1 --out org1.json
  (the same on org2-host, org3-host; on the orderer org's host:)
  orderer$   network/network.sh org init --orderer && network/network.sh org definition --orderer --out orderer.json
  orderer$   network/network.sh org import org1.json org2.json org3.json
  orderer$   network/network.sh up --no-deploy          # genesis block from the definitions, orderers joined
  org1-host$ network/network.sh org import orderer.json org2.json org3.json
  org1-host$ network/network.sh up                      # its CA and peer; block 0 fetched from an orderer

exit status:
  0 done · 2 bad input (unknown org, a definition that does not check out), with the reason
"""


def _entry(path: Path) -> dict:
    """An org's consortium-file entry from a YAML file (an org that is not in consortium.yaml)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the org entry ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping (one entry of consortium.yaml's orgs:)")
    return {"stake": 0, **raw}


def holding(make: NetworkFactory, args: argparse.Namespace, orgs: list[str], orderer: bool) -> Network:
    """The site's Network, extended by ``orgs`` (and the orderer org when ``orderer``)."""
    net = make(args)
    fresh = "site" not in nodes.load_state(net.layout)
    held = {"orgs": [], "orderer": False} if fresh else net.site
    names = [o.name for o in net.config.orgs if o.name in set(held["orgs"]) | {net.config.org(n).name for n in orgs}]
    return make(args, orgs=names, orderer=bool(held["orderer"] or orderer))


def cmd_init(args: argparse.Namespace, make: NetworkFactory) -> int:
    if args.new:
        net = holding(make, args, [], False)
        org = parse_org(_entry(Path(args.new)), args.new, net.config.domain, net.config.host)
        names = [net.init_new_org(org).name]
    elif args.org or args.orderer:
        net = holding(make, args, [args.org] if args.org else [], args.orderer)
        net.init_orgs()
        names = [net.config.orderer_org.name if args.orderer else net.config.org(args.org).name]
    else:
        raise ConfigError("name the org to initialize: --org NAME, --orderer, or --new ENTRY.yaml")
    for name in names:
        path = net.layout.own_definition(name)
        console.print(f"{name}: home {net.layout.home(name)} (keys 0600 in 0700 directories); definition "
                      f"{path} ({path.stat().st_size} bytes)", markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_definition(args: argparse.Namespace, make: NetworkFactory) -> int:
    net = make(args)
    name = net.config.orderer_org.name if args.orderer else net.config.org(args.org).name
    path = net.layout.own_definition(name)
    if not path.exists():
        raise ConfigError(f"{name} has no home in {net.layout.root}: run `network.sh org init` there first")
    if args.out:
        shutil.copyfile(path, args.out)
        console.print(f"wrote {args.out} ({path.stat().st_size} bytes): send it to the other orgs",
                      markup=False, highlight=False, soft_wrap=True)
    else:
        sys.stdout.write(path.read_text())
    return 0


def cmd_import(args: argparse.Namespace, make: NetworkFactory) -> int:
    net = make(args)
    for file in args.files:
        d = definition.load_definition(Path(file), net.config)
        if net.layout.own_definition(d.name).exists():
            raise definition.DefinitionError(f"{file}: {d.name} is an org of this site; its definition is "
                                             "written by `org init`, not imported")
        definition.import_definition(net.layout, d)
        console.print(f"imported {d.name} ({d.msp_id}, {d.kind}) from {file}", markup=False, highlight=False)
    return 0


def cmd_retire(args: argparse.Namespace, make: NetworkFactory) -> int:
    net = make(args)
    org = net.config.org(args.org)
    if org.name in net.site["orgs"]:
        raise ConfigError(f"{org.name} is an org of this site: take its nodes down instead (network.sh down)")
    definition.retire(net.layout, org.name)
    console.print(f"{org.name} ({org.msp_id}) retired: no longer part of this site's view of the consortium",
                  markup=False, highlight=False)
    return 0


def register(sub: argparse._SubParsersAction, make: NetworkFactory) -> None:
    """Add ``org init | definition | import | retire`` to the network CLI."""
    p = sub.add_parser("org", help="org-side steps: init an org's home, its definition, import others'",
                       description="The steps one org takes on its own machine to join a consortium.",
                       epilog=ORG_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    osub = p.add_subparsers(dest="org_command", required=True, metavar="ORG_COMMAND")
    i = osub.add_parser("init", help="initialize one org's home and its public definition",
                        description="Initialize one org's home in this run directory (see `org --help`). "
                                    "Idempotent: an initialized home is left as it is.")
    who = i.add_mutually_exclusive_group()
    who.add_argument("--org", help="a peer org of consortium.yaml (e.g. org1)")
    who.add_argument("--orderer", action="store_true", help="the orderer org and its orderers")
    who.add_argument("--new", metavar="ENTRY.yaml",
                     help="an org that is not in consortium.yaml (it asks to join): a YAML file with its entry "
                          "(name, msp_id, host, peer, chaincode_server_port, node_port, ca; as in "
                          "consortium.yaml's orgs:)")
    i.set_defaults(func=lambda a: cmd_init(a, make))
    d = osub.add_parser("definition", help="print or write an org's public definition")
    dwho = d.add_mutually_exclusive_group(required=True)
    dwho.add_argument("--org", help="a peer org this run directory holds")
    dwho.add_argument("--orderer", action="store_true", help="the orderer org")
    d.add_argument("--out", help="write it to this file instead of printing it")
    d.set_defaults(func=lambda a: cmd_definition(a, make))
    im = osub.add_parser("import", help="check and import other orgs' definitions")
    im.add_argument("files", nargs="+", metavar="FILE", help="definition files (JSON) received from the orgs")
    im.set_defaults(func=lambda a: cmd_import(a, make))
    rt = osub.add_parser("retire", help="leave an org removed by governance out of this site's view")
    rt.add_argument("--org", required=True, help="the removed org (e.g. org3 or Org3MSP)")
    rt.set_defaults(func=lambda a: cmd_retire(a, make))
