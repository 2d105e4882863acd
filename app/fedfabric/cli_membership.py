"""``fedfabric org …``: admit or remove an org by governance, one org admin and one command at a time.

Mounted by :mod:`fedfabric.cli` as ``app.add_typer(org_app, name="org")``. Every command acts as the
``--org``'s admin from that org's own run directory: it runs the Fabric side (the channel config
update, passed between the orgs as a file) and the ledger side (the contract's membership proposal)
together; :mod:`fedfabric.orgs` holds the steps.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import typer

from .cli_audit import manual

org_app = typer.Typer(
    name="org", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    help="Admit an org to the consortium's channel, or remove one, by governance: a channel config update "
         "signed by org admins whose orgs hold the consortium's quorum of stake (and a majority of the "
         "channel's orgs, Fabric's own rule), decided and recorded on the ledger.\n\n"
         "[bold]Admitting org4, step by step[/] (each line on the named org's machine):\n\n"
         "org4:  network/network.sh org init --new org4.yaml && network/network.sh org definition --org org4 "
         "--out org4.json  (send org4.json to the members)\n\n"
         "org1:  fedfabric org propose-add org4.json --proposal add-org4 --out add-org4.pb --reason \"...\" "
         "(send add-org4.pb on)\n\n"
         "org2:  fedfabric org sign add-org4 add-org4.pb --definition org4.json --org org2  (until the stake "
         "quorum and a majority of the orgs signed)\n\n"
         "org2:  fedfabric org submit add-org4 add-org4.pb --definition org4.json --org org2\n\n"
         "org4:  network/network.sh org import orderer.json org1.json org2.json org3.json && network/network.sh "
         "up  (its CA and peer; the peer joins and catches up)\n\n"
         "all:   network/network.sh deploy  (the chaincode's next sequence: its collection includes org4; org4 "
         "approves and starts its chaincode server)\n\n"
         "org1:  fedfabric consortium propose stake grant-org4 Org4MSP +100 --reason \"...\"  (and approve: org4 "
         "gets stake through the stake governance)\n\n"
         "[bold]Removing[/] is the same with [cyan]propose-remove MSP[/]; the org is suspended on the ledger "
         "(no weight in votes or the endorsement policy) once the stake quorum approved.\n\n"
         "[bold]Exit status.[/] 0 done · 1 the ledger or the orderer could not be reached, or a transaction "
         "failed · 2 refused (a check, the contract or Fabric said no), with a one-line message.")

ORG_OPT = typer.Option("org1", "--org", help="The org whose admin you act as (its run directory: --run-dir).")
RUN_OPT = typer.Option(None, "--run-dir", help="This org's run directory (default: $FEDFABRIC_RUN_DIR or ./run).")
CONFIG_OPT = typer.Option(None, "--config", help="The consortium file (default: network/consortium.yaml).")
PROPOSAL_ARG = typer.Argument(..., help="The proposal id.")
UPDATE_ARG = typer.Argument(..., help="The update file (a signature is added in place).")
DEF_OPT = typer.Option(None, "--definition", help="The new org's definition file (admissions: checked against "
                                                 "the ledger's proposal and the update).")


@contextmanager
def _site(org: str, config: Path | None, run_dir: Path | None) -> Iterator[tuple[Any, Any]]:
    """(Site, MembershipClient) of ``org``'s admin; a refusal or failure inside is one line and an exit code."""
    from .cli import _client, _config, _fail
    from .client import Rejected
    from .ledger import GatewayError
    from .network import paths
    from .network.config import ConfigError
    from .network.definition import DefinitionError
    from .network.fabricbin import FabricBinaryError, locate
    from .network.layout import Layout
    from .orgs import MembershipClient, OrgChangeError, Site

    cfg = _config(config, run_dir)
    gw, client = _client(org, "Admin", config, run_dir)
    me = cfg.org(org)
    site = Site(locate(), Layout((run_dir or paths.run_dir()).resolve(), cfg), me)
    with gw:
        try:
            yield site, MembershipClient(client.contract, me.msp_id)
        except Rejected as exc:
            _fail(exc.message)
        except (OrgChangeError, DefinitionError, ConfigError) as exc:
            _fail(str(exc))
        except (GatewayError, FabricBinaryError) as exc:
            _fail(str(exc), 1)


def _said(update: Any, prop: dict) -> None:
    from .orgs import summary

    typer.echo(update.describe())
    typer.echo(summary(prop))


@org_app.command("propose-add")
@manual
def propose_add(definition: Path = typer.Argument(..., help="The new org's definition (from its `network.sh org "
                                                           "definition`)."),
                proposal: str = typer.Option(..., "--proposal", help="A new, unique proposal id."),
                out: Path = typer.Option(..., "--out", help="Where to write the signed update (to send to the other "
                                                            "orgs' admins)."),
                reason: str = typer.Option(..., "--reason", help="Why (recorded on the ledger)."),
                org: str = ORG_OPT, config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Propose admitting an org: build the channel config update adding it, sign it, propose it on the ledger.

    The definition is checked (format, certificates, this consortium's domain, no private key). The update
    adds the org's group exactly as configtxgen encodes its definition (MSP with node OUs, its Readers,
    Writers, Admins and Endorsement policies, its anchor peer) to the channel's current config. The ledger
    records the proposal with the SHA-256 of the definition file and of the update, approved by your org.

    \b
    [bold]Example[/]
      fedfabric org propose-add org4.json --proposal add-org4 --out add-org4.pb --reason "a fourth hospital"
    """
    from . import orgs

    with _site(org, config, run_dir) as (site, client):
        update, prop = orgs.propose_add(site, client, definition, proposal, out, reason)
        _said(update, prop)
        typer.echo(f"update written to {out}: send it with {definition} to the other orgs' admins "
                   f"(`fedfabric org sign {proposal} {out.name} --definition {definition.name} --org ORG`)")


@org_app.command("propose-remove")
@manual
def propose_remove(msp_id: str = typer.Argument(..., help="The org to remove (e.g. Org3MSP)."),
                   proposal: str = typer.Option(..., "--proposal", help="A new, unique proposal id."),
                   out: Path = typer.Option(..., "--out", help="Where to write the signed update."),
                   reason: str = typer.Option(..., "--reason", help="Why (recorded on the ledger)."),
                   org: str = ORG_OPT, config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Propose removing an org from the channel: build the update dropping its group, sign it, propose it.

    Once admins of orgs holding the quorum of stake approved (`fedfabric org sign`), the contract suspends
    the org: it can no longer write, carries no weight in votes and leaves the endorsement policy. Submitting
    the update removes it from the channel, so its peer and identities are no longer channel members.

    \b
    [bold]Example[/]
      fedfabric org propose-remove Org3MSP --proposal rm-org3 --out rm-org3.pb --reason "left the study"
    """
    from . import orgs

    with _site(org, config, run_dir) as (site, client):
        update, prop = orgs.propose_remove(site, client, msp_id, proposal, out, reason)
        _said(update, prop)


@org_app.command("sign")
@manual
def sign(proposal: str = PROPOSAL_ARG, update: Path = UPDATE_ARG, definition: Path = DEF_OPT, org: str = ORG_OPT,
         config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Check a proposed org change, sign its channel update and approve it on the ledger, as your org's admin.

    The update must be the one the ledger's proposal names (its SHA-256) and do just what it says: add
    exactly the org of --definition (the definition file the proposal names, and the group it makes) or
    remove exactly the proposed org. Your signature is added to the file; your approval is a transaction,
    so the ledger keeps who approved. When the approving orgs hold the consortium's quorum of stake the
    contract applies the change. This site then counts the admitted org as a member (imports its
    definition) or leaves the removed one out.

    \b
    [bold]Example[/]
      fedfabric org sign add-org4 add-org4.pb --definition org4.json --org org2 --run-dir /srv/org2/run
    """
    from . import orgs

    with _site(org, config, run_dir) as (site, client):
        signed, prop = orgs.sign(site, client, proposal, update, definition)
        _said(signed, prop)


@org_app.command("submit")
@manual
def submit(proposal: str = PROPOSAL_ARG, update: Path = UPDATE_ARG, definition: Path = DEF_OPT, org: str = ORG_OPT,
           config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Submit an approved org change to the orderer and record on the ledger who signed it.

    Refused unless the ledger applied the proposal (its approvers hold the quorum of stake) and the update,
    with your signature, carries signatures of a majority of the channel's orgs' admins (Fabric's
    /Channel/Application/Admins policy); the message names who still has to sign. After the config block
    is committed, a transaction records the orgs whose admins signed the update and its block number.

    \b
    [bold]Example[/]
      fedfabric org submit add-org4 add-org4.pb --definition org4.json --org org2
    """
    from . import orgs

    with _site(org, config, run_dir) as (site, client):
        block, submitted, prop = orgs.submit(site, client, proposal, update, definition)
        _said(submitted, prop)
        typer.echo(f"committed in config block {block}")


@org_app.command("list")
def list_proposals(org: str = ORG_OPT, user: str = typer.Option("User1", help="Identity to read as."),
                   config: Path = CONFIG_OPT, run_dir: Path = RUN_OPT) -> None:
    """Every membership proposal: its approvals and, once submitted, who signed the channel update."""
    from .cli import _read
    from .orgs import MembershipClient, summary

    for prop in _read(org, user, config, run_dir, lambda c: MembershipClient(c.contract).list_memberships()):
        typer.echo(summary(prop))
