"""``fedfabric network org …`` (``network.sh org …``): the org-side commands of a multi-host consortium
(init, definition, import, retire), and the site they act on.

Each org runs ``org init`` on its own machine: its keys never leave its home there. What it sends the
others is its definition (``org definition``); what it receives from them, it checks and imports
(``org import``). ``network.sh up`` then starts exactly the nodes of the orgs the run directory holds.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .common import fail, manual, said

if TYPE_CHECKING:
    from ..network.manager import SiteManager


@dataclass(frozen=True)
class NetworkSite:
    """The site of ``--run-dir``: the part of the consortium this machine runs, from the consortium file."""

    config: Path
    run_dir: Optional[Path]

    def network(self, orgs: Optional[list[str]] = None, orderer: Optional[bool] = None) -> "SiteManager":
        """The site's process manager: the orgs it holds (remembered), or ``orgs`` / ``orderer`` when given."""
        from rich.markup import escape

        from ..network.config import load_config
        from ..network.manager import SiteManager

        return SiteManager(load_config(self.config), self.run_dir, orgs=orgs, orderer=orderer,
                       report=lambda m: said(f"[dim]•[/dim] {escape(m)}", markup=True))

    def holding(self, orgs: list[str], orderer: bool) -> "SiteManager":
        """The site's process manager, extended by ``orgs`` (and the orderer org when ``orderer``)."""
        from ..network import nodes

        net = self.network()
        fresh = "site" not in nodes.load_state(net.layout)
        held = {"orgs": [], "orderer": False} if fresh else net.site
        wanted = set(held["orgs"]) | {net.config.org(n).name for n in orgs}
        return self.network(orgs=[o.name for o in net.config.orgs if o.name in wanted],
                            orderer=bool(held["orderer"] or orderer))


def site(ctx: typer.Context) -> NetworkSite:
    """The site the ``network`` group's --config and --run-dir name."""
    return ctx.find_object(NetworkSite)


app = typer.Typer(
    name="org", no_args_is_help=True, rich_markup_mode="rich",
    help="Org-side steps: init an org's home, its definition, import others'.\n\n"
         "The steps one org takes on its own machine to join a consortium.\n\n"
         "A multi-host consortium, step by step (each line on the machine named first):\n\n"
         "  org1-host$ network/network.sh org init --org org1 && network/network.sh org definition --org org1 "
         "--out org1.json\n"
         "  (the same on org2-host, org3-host; on the orderer org's host:)\n"
         "  orderer$   network/network.sh org init --orderer && network/network.sh org definition --orderer "
         "--out orderer.json\n"
         "  orderer$   network/network.sh org import org1.json org2.json org3.json\n"
         "  orderer$   network/network.sh up --no-deploy          # genesis block from the definitions, orderers "
         "joined\n"
         "  org1-host$ network/network.sh org import orderer.json org2.json org3.json\n"
         "  org1-host$ network/network.sh up                      # its CA and peer; block 0 fetched from an "
         "orderer\n\n"
         "[bold]Exit status.[/] 0 done · 2 bad input (unknown org, a definition that does not check out), with "
         "the reason.")


def _entry(path: Path) -> dict:
    """An org's consortium-file entry from a YAML file (an org that is not in consortium.yaml)."""
    import yaml

    from ..network.config import ConfigError

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the org entry ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping (one entry of consortium.yaml's orgs:)")
    return {"stake": 0, **raw}


def _one_of(**given: object) -> None:
    """Refuse more than one of options that exclude each other (exit 2, as a usage error)."""
    named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v]
    if len(named) > 1:
        fail(f"{' and '.join(named)} exclude each other: name one")


@app.command("init")
@manual
def org_init(ctx: typer.Context,
             org: Annotated[Optional[str], typer.Option("--org", help="A peer org of consortium.yaml (e.g. org1).")]
             = None,
             orderer: Annotated[bool, typer.Option("--orderer", help="The orderer org and its orderers.")] = False,
             new: Annotated[Optional[Path], typer.Option(
                 "--new", metavar="ENTRY.yaml",
                 help="An org that is not in consortium.yaml (it asks to join): a YAML file with its entry (name, "
                      "msp_id, host, peer, chaincode_server_port, node_port, ca; as in consortium.yaml's orgs:).")]
             = None) -> None:
    """Initialize one org's home and its public definition.

    Initialize one org's home in this run directory (this machine: its site): cryptogen for that org alone
    (CA and TLS CA key pairs, MSP with node OUs, peer, Admin, User1, User2), the Auditor identity, TLS
    certificates of its Fabric CA and training node, the Fabric CA's bootstrap admin password and server
    config -- every key 0600 in a 0700 directory under orgs/<org>/ and nowhere else -- then its public
    definition. Idempotent: an initialized home is left as it is.
    """
    from ..network.config import ConfigError, parse_org

    _one_of(org=org, orderer=orderer, new=new)
    here = site(ctx)
    if new:
        net = here.holding([], False)
        names = [net.init_new_org(parse_org(_entry(new), str(new), net.config.domain, net.config.host)).name]
    elif org or orderer:
        net = here.holding([org] if org else [], orderer)
        net.init_orgs()
        names = [net.config.orderer_org.name if orderer else net.config.org(org).name]
    else:
        raise ConfigError("name the org to initialize: --org NAME, --orderer, or --new ENTRY.yaml")
    for name in names:
        path = net.layout.own_definition(name)
        said(f"{name}: home {net.layout.home(name)} (keys 0600 in 0700 directories); definition "
             f"{path} ({path.stat().st_size} bytes)")


@app.command("definition")
@manual
def org_definition(ctx: typer.Context,
                   org: Annotated[Optional[str], typer.Option("--org", help="A peer org this run directory holds.")]
                   = None,
                   orderer: Annotated[bool, typer.Option("--orderer", help="The orderer org.")] = False,
                   out: Annotated[Optional[Path], typer.Option("--out", help="Write it to this file instead of "
                                                                             "printing it.")] = None) -> None:
    """Print or write an org's public definition.

    The file to send the other orgs: print it, or write it to --out. Name the org with --org or --orderer.
    """
    from ..network.config import ConfigError

    _one_of(org=org, orderer=orderer)
    if not (org or orderer):
        fail("name the org: --org NAME or --orderer")
    net = site(ctx).network()
    name = net.config.orderer_org.name if orderer else net.config.org(org).name
    path = net.layout.own_definition(name)
    if not path.exists():
        raise ConfigError(f"{name} has no home in {net.layout.root}: run `network.sh org init` there first")
    if out:
        shutil.copyfile(path, out)
        said(f"wrote {out} ({path.stat().st_size} bytes): send it to the other orgs")
    else:
        sys.stdout.write(path.read_text())


@app.command("import")
@manual
def org_import(ctx: typer.Context,
               files: Annotated[list[Path], typer.Argument(metavar="FILE...", show_default=False,
                                                           help="Definition files (JSON) received from the orgs.")],
               ) -> None:
    """Check and import other orgs' definitions.

    Each definition is checked (format, certificates, this consortium's domain, no private key) and added to
    this site's public/ directory (an org admitted by governance: `fedfabric org --help`).
    """
    from ..network import definition

    net = site(ctx).network()
    for file in files:
        d = definition.load_definition(file, net.config)
        if net.layout.own_definition(d.name).exists():
            raise definition.DefinitionError(f"{file}: {d.name} is an org of this site; its definition is "
                                             "written by `org init`, not imported")
        definition.import_definition(net.layout, d)
        said(f"imported {d.name} ({d.msp_id}, {d.kind}) from {file}")


@app.command("retire")
@manual
def org_retire(ctx: typer.Context,
               org: Annotated[str, typer.Option("--org", show_default=False,
                                                help="The removed org (e.g. org3 or Org3MSP).")]) -> None:
    """Leave an org removed by governance out of this site's view.

    Its definition is kept under public/retired/; `fedfabric org sign` and `submit` do this themselves on
    the sites they run on.
    """
    from ..network import definition
    from ..network.config import ConfigError

    net = site(ctx).network()
    o = net.config.org(org)
    if o.name in net.site["orgs"]:
        raise ConfigError(f"{o.name} is an org of this site: take its nodes down instead (network.sh down)")
    definition.retire(net.layout, o.name)
    said(f"{o.name} ({o.msp_id}) retired: no longer part of this site's view of the consortium")
