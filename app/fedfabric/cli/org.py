"""``fedfabric org …``: admit or remove an org by governance, one org admin and one command at a time.

Every command acts as the ``--org``'s admin from that org's own run directory: it runs the Fabric side
(the channel config update, passed between the orgs as a file) and the ledger side (the contract's
membership proposal) together; :mod:`fedfabric.orgs` holds the steps.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from .common import Config, Org, RunDir, User, ledger, manual, where

app = typer.Typer(
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

Proposal = Annotated[str, typer.Argument(help="The proposal id.", show_default=False)]
UpdateFile = Annotated[Path, typer.Argument(help="The update file (a signature is added in place).",
                                            show_default=False)]
Definition = Annotated[Optional[Path], typer.Option(
    "--definition", help="The new org's definition file (admissions: checked against the ledger's proposal and "
                         "the update).")]
NewProposal = Annotated[str, typer.Option("--proposal", help="A new, unique proposal id.", show_default=False)]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded on the ledger).", show_default=False)]


@contextmanager
def _admin(org: str, config: Optional[Path], run_dir: Optional[Path]) -> Iterator[tuple[Any, Any]]:
    """(Site, MembershipClient) of ``org``'s admin on its own site."""
    from ..network.fabricbin import locate
    from ..orgs import MembershipClient, Site

    with ledger(where(org, config, run_dir), "Admin") as s:
        yield Site(locate(), s.layout, s.org), MembershipClient(s.client.contract, s.org.msp_id)


def _said(update: Any, prop: dict) -> None:
    from ..orgs import summary

    typer.echo(update.describe())
    typer.echo(summary(prop))


@app.command("propose-add")
@manual
def propose_add(definition: Annotated[Path, typer.Argument(help="The new org's definition (from its `network.sh "
                                                                "org definition`).", show_default=False)],
                proposal: NewProposal,
                out: Annotated[Path, typer.Option("--out", help="Where to write the signed update (to send to the "
                                                                "other orgs' admins).", show_default=False)],
                reason: Reason, org: Org = "org1", config: Config = None, run_dir: RunDir = None) -> None:
    """Propose admitting an org: build the channel config update adding it, sign it, propose it on the ledger.

    The definition is checked (format, certificates, this consortium's domain, no private key). The update
    adds the org's group exactly as configtxgen encodes its definition (MSP with node OUs, its Readers,
    Writers, Admins and Endorsement policies, its anchor peer) to the channel's current config. The ledger
    records the proposal with the SHA-256 of the definition file and of the update, approved by your org.

    \b
    [bold]Example[/]
      fedfabric org propose-add org4.json --proposal add-org4 --out add-org4.pb --reason "a fourth hospital"
    """
    from .. import orgs

    with _admin(org, config, run_dir) as (site, client):
        update, prop = orgs.propose_add(site, client, definition, proposal, out, reason)
    _said(update, prop)
    typer.echo(f"update written to {out}: send it with {definition} to the other orgs' admins "
               f"(`fedfabric org sign {proposal} {out.name} --definition {definition.name} --org ORG`)")


@app.command("propose-remove")
@manual
def propose_remove(msp_id: Annotated[str, typer.Argument(help="The org to remove (e.g. Org3MSP).", show_default=False)],
                   proposal: NewProposal,
                   out: Annotated[Path, typer.Option("--out", help="Where to write the signed update.",
                                                     show_default=False)],
                   reason: Reason, org: Org = "org1", config: Config = None, run_dir: RunDir = None) -> None:
    """Propose removing an org from the channel: build the update dropping its group, sign it, propose it.

    Once admins of orgs holding the quorum of stake approved (`fedfabric org sign`), the contract suspends
    the org: it can no longer write, carries no weight in votes and leaves the endorsement policy. Submitting
    the update removes it from the channel, so its peer and identities are no longer channel members.

    \b
    [bold]Example[/]
      fedfabric org propose-remove Org3MSP --proposal rm-org3 --out rm-org3.pb --reason "left the study"
    """
    from .. import orgs

    with _admin(org, config, run_dir) as (site, client):
        update, prop = orgs.propose_remove(site, client, msp_id, proposal, out, reason)
    _said(update, prop)


@app.command("sign")
@manual
def sign(proposal: Proposal, update: UpdateFile, definition: Definition = None, org: Org = "org1",
         config: Config = None, run_dir: RunDir = None) -> None:
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
    from .. import orgs

    with _admin(org, config, run_dir) as (site, client):
        signed, prop = orgs.sign(site, client, proposal, update, definition)
    _said(signed, prop)


@app.command("submit")
@manual
def submit(proposal: Proposal, update: UpdateFile, definition: Definition = None, org: Org = "org1",
           config: Config = None, run_dir: RunDir = None) -> None:
    """Submit an approved org change to the orderer and record on the ledger who signed it.

    Refused unless the ledger applied the proposal (its approvers hold the quorum of stake) and the update,
    with your signature, carries signatures of a majority of the channel's orgs' admins (Fabric's
    /Channel/Application/Admins policy); the message names who still has to sign. After the config block
    is committed, a transaction records the orgs whose admins signed the update and its block number.

    \b
    [bold]Example[/]
      fedfabric org submit add-org4 add-org4.pb --definition org4.json --org org2
    """
    from .. import orgs

    with _admin(org, config, run_dir) as (site, client):
        block, submitted, prop = orgs.submit(site, client, proposal, update, definition)
    _said(submitted, prop)
    typer.echo(f"committed in config block {block}")


@app.command("list")
def list_proposals(org: Org = "org1", user: User = "User1", config: Config = None, run_dir: RunDir = None) -> None:
    """Every membership proposal: its approvals and, once submitted, who signed the channel update."""
    from ..orgs import MembershipClient, summary

    with ledger(where(org, config, run_dir), user) as s:
        proposals = MembershipClient(s.client.contract).list_memberships()
    for prop in proposals:
        typer.echo(summary(prop))
