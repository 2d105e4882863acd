"""``fedfabric consortium …``: the members and their stake on the ledger; every change is a transaction,
approved by a stake quorum where it must be."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from .common import Config, Org, RunDir, User, console, fail, ledger, manual, utc, where

app = typer.Typer(help="The consortium's members and stake on the ledger.", no_args_is_help=True,
                  rich_markup_mode="rich")

PROPOSAL_KINDS = ("stake", "status")


def _write(org: str, config: Optional[Path], run_dir: Optional[Path], what: str, call: Callable[[Any], Any],
           before: Optional[Callable[[Any], None]] = None) -> Any:
    """Run one ledger write as ``org``'s admin and say where it was committed; ``before(session)``
    may end the command first."""
    with ledger(where(org, config, run_dir), "Admin") as s:
        if before is not None:
            before(s)
        written = call(s.client)
    typer.echo(f"{what}: committed in block {written.block_number} (tx {written.tx_id[:16]}…)")
    return written.value


def _proposal_outcome(value: dict) -> None:
    prop = value.get("proposal", value)
    typer.echo(f"proposal {prop.get('proposal_id')}: {prop.get('status')}, approved by "
               f"{', '.join(prop.get('approvals', [])) or 'nobody yet'}")


def _policy_fits(amount: int, moves: Callable[[Any], dict[str, int]], what: Callable[[int], str],
                 positive: bool = False) -> Callable[[Any], None]:
    """A ``before`` for :func:`_write`: compile the endorsement policy the stake change would leave, as
    the contract will, and end the command (exit 2), naming amounts that fit, when it has none.
    ``moves(session)``: MSP id -> +1 or -1 per unit of amount (:func:`fedfabric.stakefit.check`; an
    amount or org it does not take is left to the contract to refuse); ``what(amount)`` names the
    command with another amount."""
    from ..stakefit import StakeChangeRefused, check

    def before(s: Any) -> None:
        try:
            check(s.client.list_orgs(), tuple(s.client.get_policy()["threshold"]), amount, moves(s), positive)
        except StakeChangeRefused as exc:
            other = "; ".join(f"{what(a.amount)} (then holding {a.joins:,}, as other members do; policy "
                              f"{a.envelope_bytes:,} bytes)" for a in exc.alternatives)
            fail(f"not sent, the contract would refuse it: cannot compile endorsement policy: {exc}. "
                 + (f"It accepts: {other}" if other else
                    "No amount that leaves the org a stake another member holds fits either"))
    return before


def _kind(kind: str) -> str:
    if kind not in PROPOSAL_KINDS:
        fail(f"proposal kind must be one of {', '.join(PROPOSAL_KINDS)}, got {kind!r}")
    return kind


@app.command("init")
def consortium_init(config: Config = None, run_dir: RunDir = None, org: Org = "org1") -> None:
    """Record the orgs, their stake and the approval quorum of consortium.yaml on the ledger (once).

    Needs an org admin; run it after `fedfabric network up`.
    """
    from ..node.bootstrap import init_consortium

    with ledger(where(org, config, run_dir), "Admin") as s:
        s.client.wait_ready()
        done = init_consortium(s.client, s.config)
    typer.echo("consortium initialized" if done else "consortium was already initialized; nothing changed")


SHOWN_POLICY_CHARS = 400   # a longer policy text is cut, with its length


@app.command("show")
def consortium_show(org: Org = "org1", user: User = "User1", config: Config = None, run_dir: RunDir = None) -> None:
    """Members, stake (and what each owes to slashing), balances and the endorsement policy in force."""
    from rich.table import Table

    with ledger(where(org, config, run_dir), user) as s:
        orgs, policy = s.client.list_orgs(), s.client.get_policy()
    t = Table(title="consortium")
    for c in ("org", "MSP", "status", "stake", "owed to slashing", "balance"):
        t.add_column(c)
    for o in orgs:
        t.add_row(o["name"], o["msp_id"], o["status"], str(o["stake"]), str(o.get("slash_owed", 0)),
                  str(o["balance"]))
    con = console()
    con.print(t)
    num, den = policy["threshold"]
    size = policy["size"]
    con.print(f"endorsement policy: orgs holding ≥ {num}/{den} of the stake; {len(policy['classes'])} stake "
              f"class(es), {size['gates']} OutOf gate(s), {size['signed_by']} principal reference(s), "
              f"envelope {size['envelope_bytes']:,} bytes")
    text = policy["policy"]
    con.print(text if len(text) <= SHOWN_POLICY_CHARS else
              f"{text[:SHOWN_POLICY_CHARS]}… ({len(text):,} characters in all: get_policy has the whole text)")


@app.command("transfer")
@manual
def consortium_transfer(to: Annotated[str, typer.Argument(help="MSP id of the receiving org (e.g. Org2MSP).")],
                        amount: Annotated[int, typer.Argument(help="Stake to move (a positive integer).")],
                        org: Org = "org1", config: Config = None, run_dir: RunDir = None) -> None:
    """Move some of your org's stake to another member, as your org's admin.

    Stake weighs approval votes, the round-leader draw and rewards. After the transfer the contract
    recompiles the stake-weighted endorsement policy and sets it on every job and model key. A transfer
    whose stakes would have no exact policy under 64 KiB is not sent; the amounts that would fit are
    named. Stake your org owes to slashing (`consortium show`) stays with it and cannot be moved.

    [bold]Exit status.[/] 0 committed · 1 the ledger could not be reached · 2 refused (not an admin, not
    enough stake, unknown org, ...), with the contract's message.
    """
    check = _policy_fits(amount, lambda s: {} if to == s.org.msp_id else {s.org.msp_id: -1, to: +1},
                         lambda a: f"transfer {a} to {to}", positive=True)
    _write(org, config, run_dir, f"transfer {amount} stake to {to}", lambda c: c.transfer_stake(to, amount), check)


@app.command("propose", context_settings={"ignore_unknown_options": True})   # -20 is a change
@manual
def consortium_propose(
        kind: Annotated[str, typer.Argument(help="stake (mint or burn) or status (suspend or reinstate).")],
        proposal_id: Annotated[str, typer.Argument(help="A new, unique proposal id.")],
        msp_id: Annotated[str, typer.Argument(help="The org the change is about (e.g. Org3MSP).")],
        change: Annotated[str, typer.Argument(help="stake: a signed integer (+50, -20); status: active or "
                                                   "suspended.")],
        reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the ledger).")],
        org: Org = "org1", config: Config = None, run_dir: RunDir = None) -> None:
    """Propose a change of an org's stake or status, as your org's admin; your org approves it at once.

    The change is applied when admins of orgs holding the consortium's approval quorum of stake have
    approved it (`fedfabric consortium approve`). A suspended org cannot write, is never drawn as round
    leader and carries no weight in votes or the endorsement policy.

    A stake change is first checked here with the contract's own compiler: when the stake vector it
    leaves has no exact endorsement policy under 64 KiB (five or more distinct stakes, apart by uneven
    steps), nothing is sent, and the changes that would fit -- giving the org a stake other members
    hold -- are named, nearest first.

    \b
    [bold]Examples[/]
      fedfabric consortium propose stake grant-7 Org3MSP +50 --reason "joined the second study"
      fedfabric consortium propose stake burn-2 Org2MSP -20 --reason "left the imaging study"
      fedfabric consortium propose status pause-3 Org3MSP suspended --reason "audit pending" --org org2

    [bold]Exit status.[/] 0 committed · 1 the ledger could not be reached · 2 bad input or refused by the
    contract, with its message.
    """
    if _kind(kind) == "stake":
        try:
            delta = int(change)
        except ValueError:
            fail(f"a stake change is a signed integer such as +50 or -20, got {change!r}")
        check = _policy_fits(delta, lambda s: {msp_id: +1}, lambda d: f"a stake change of {d:+d}")
        value = _write(org, config, run_dir, f"propose stake {delta:+d} for {msp_id}",
                       lambda c: c.propose_stake_adjustment(proposal_id, msp_id, delta, reason), check)
    else:
        value = _write(org, config, run_dir, f"propose status {change} for {msp_id}",
                       lambda c: c.propose_status_change(proposal_id, msp_id, change, reason))
    _proposal_outcome(value)


@app.command("approve")
@manual
def consortium_approve(kind: Annotated[str, typer.Argument(help="stake or status.")],
                       proposal_id: Annotated[str, typer.Argument(help="The proposal to approve.")],
                       org: Org = "org1", config: Config = None, run_dir: RunDir = None) -> None:
    """Approve a pending stake or status proposal, as your org's admin.

    Once the approving orgs hold the quorum of stake, the change is applied in the same transaction and
    the endorsement policy is recompiled.

    [bold]Exit status.[/] 0 committed · 1 the ledger could not be reached · 2 refused (already approved,
    not pending, unknown proposal, ...), with the contract's message.
    """
    call = ((lambda c: c.approve_stake_adjustment(proposal_id)) if _kind(kind) == "stake"
            else (lambda c: c.approve_status_change(proposal_id)))
    _proposal_outcome(_write(org, config, run_dir, f"approve {kind} proposal {proposal_id}", call))


@app.command("history")
def consortium_history(msp_id: Annotated[str, typer.Argument(help="The org (e.g. Org2MSP).")],
                       org: Org = "org1", user: User = "User1", config: Config = None, run_dir: RunDir = None) -> None:
    """Every change of an org's stake, balance and status, with the transaction that made it."""
    from rich.table import Table

    with ledger(where(org, config, run_dir), user) as s:
        rows = s.client.org_history(msp_id)
    t = Table(title=f"history of {msp_id}")
    for c in ("time (UTC)", "field", "before", "after", "delta", "reason", "tx"):
        t.add_column(c)
    for h in rows:
        t.add_row(utc(h["ts"]) if "ts" in h else "", str(h.get("field", "")), str(h.get("before", "")),
                  str(h.get("after", "")), str(h.get("delta", "")), str(h.get("reason", "")),
                  str(h.get("tx_id", ""))[:16])
    console().print(t)
