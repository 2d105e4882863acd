"""``fedfabric audit …``: read the ledger and check it; trace a model to version 0, inspect rounds and orgs,
verify a model file, write a report or a W3C PROV-JSON lineage, check every peer's hash chain.

Every command only reads. Exit status: 0 success; 1 a check failed (broken lineage, tampered or unknown
model file, a broken hash chain); 2 bad input (unknown job, version, round or org, missing file, not a
model file, no identity, ledger unreachable) with a one-line message.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import audit
from ..audit.common import short
from .common import (EXIT_FAILED, QUERY_HELP, Config, Json, Org, RunDir, Store, User, console, emit_json, fail, manual,
                     metrics_text, node_store, peers, query, table, utc, where)

app = typer.Typer(
    name="audit", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    help="Audit the consortium's ledger: trace a model to version 0, inspect rounds and orgs, verify a model "
         "file, write a report or a W3C PROV-JSON lineage.\n\n"
         "Every command only reads; by default as the org's [bold]Auditor[/] identity (read-only role). "
         "Add [cyan]--json[/] for machine-readable output.\n\n" + QUERY_HELP)


@app.command("lineage")
@manual
def audit_lineage(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                  ref: Annotated[str, typer.Option("--ref", help="Version number or alias to start from.")] = "latest",
                  org: Org = "org1", user: User = "Auditor", run_dir: RunDir = None, config: Config = None,
                  as_json: Json = False) -> None:
    """Trace a model version back to version 0, checking every link.

    For each version: its parent is the previous version, its [italic]parent_hash[/] is the parent's
    [italic]model_hash[/], it is finalized, the stake that approved exactly its hash reached the round's
    quorum, and its round is recorded as finalized into it. Version 0 must carry the job's
    [italic]initial_hash[/]. Prints each version with its hashes, approving stake, transaction and block.

    Exit 1 with the first broken link named, e.g. [dim]version 2 says its parent (version 1) has model
    hash 3bf9…, but version 1 records 0000…[/].
    """
    with query(org, user, config, run_dir, as_json) as q:
        chain = audit.lineage(q.client, job, ref)
    if as_json:
        emit_json({"ok": True, "job_id": job, "ref": ref, "lineage": chain})
        return
    t = table(f"Lineage of job {job} from {ref}", "version", "round", "status", "model hash", "parent hash",
              "approving stake", "transaction", "block")
    for x in chain:
        t.add_row(str(x["version"]), str(x["round"]), x["status"] or "-", short(x["model_hash"], 16),
                  short(x["parent_hash"], 16), f"{x['approved_stake']}/{x['total_stake']}" if x["parents"] else "-",
                  short(x["tx_id"], 12), "-" if x["block"] is None else str(x["block"]))
    con = console()
    con.print(t)
    con.print(f"[green]lineage intact[/]: {len(chain)} versions, version {chain[0]['version']} → 0, every link checked")


@app.command("round")
@manual
def audit_round(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                round_: Annotated[int, typer.Argument(metavar="N", min=1, help="Round number (1, 2, …).",
                                                      show_default=False)],
                org: Org = "org1", user: User = "Auditor", run_dir: RunDir = None, config: Config = None,
                as_json: Json = False) -> None:
    """Show one round: state, leader, participants, updates, votes, stake, rewards and slashes.

    The round's state and, while it is open, its phase (registering, submitting, revealing, voting,
    closing) by the protocol's own deadline rules. One row per org of the round's electorate with its
    stake in the round's snapshot, whether it was a participant and submitted (or was left out of the
    aggregate), its sample count and update hash (the update itself stays private), the orgs it
    revealed pairwise seeds for, its vote and the metrics it reported, and what the settlement paid or
    slashed. Then the tally (approving stake per voted result) and the round's timeline: every
    transaction from the one that opened it to the one that finalized it, with its block.
    """
    with query(org, user, config, run_dir, as_json) as q:
        s = audit.round_summary(q.client, job, round_)
    if as_json:
        emit_json({"ok": True, **s})
        return
    con = console()
    head = (f"[bold]Round {s['round']} of job {job}[/]: {s['state']}"
            + ("" if s["closed"] else f" ({s['phase']})")
            + (f" ({s['reason']})" if s["reason"] else "")
            + f" · leader {s['leader']} · base version {s['base_version']}"
            + (f" → version {s['version']} ({short(s['model_hash'], 16)})" if s["version"] is not None else ""))
    con.print(head)
    t = table("Participants", "org", "stake", "participant", "submitted", "samples", "update hash",
              "seeds revealed for", "vote", "vote metrics", "reward", "slashed")
    for p in s["participants"]:
        t.add_row(p["msp_id"], str(p["stake"]), "yes" if p["participant"] else "no",
                  "yes" if p["submitted"] else ("left out" if p["left_out"] else "no"),
                  "-" if p["sample_count"] is None else str(p["sample_count"]), short(p["update_hash"], 12),
                  ", ".join(p["revealed_for"]) or "-", p["vote"] or "-", metrics_text(p["vote_metrics"]),
                  str(p["reward"]), str(p["slashed"]) + (f" ({p['owed']} owed)" if p["owed"] else ""))
    con.print(t)
    if s.get("slash_deferred"):
        con.print(f"slashing owed, not all taken: {s['slash_deferred']}")
    tally = s.get("tally") or {}
    if tally:
        models = {p["vote_result_key"]: p["vote_model_hash"] for p in s["participants"] if p["vote_result_key"]}
        by_result = ", ".join(f"model {short(models.get(k), 12)}: {v}"
                              for k, v in sorted((tally.get("approve_by_result") or {}).items()))
        con.print(f"tally: approving stake by voted result {by_result or '-'} of {tally.get('total_stake')} "
                  f"(quorum {'/'.join(map(str, tally.get('quorum') or s['quorum']))})")
    tx = table("Timeline", "step", "org", "time (UTC)", "transaction", "block")
    for e in s["timeline"]:
        tx.add_row(e["step"], e["msp_id"] or "-", utc(e["time"]), short(e["tx_id"], 16),
                   "-" if e["block"] is None else str(e["block"]))
    con.print(tx)


@app.command("org")
@manual
def audit_org(msp: Annotated[str, typer.Argument(metavar="MSP", help="Org MSP id (Org2MSP) or name (org2).",
                                                 show_default=False)],
              org: Org = "org1", user: User = "Auditor", run_dir: RunDir = None, config: Config = None,
              as_json: Json = False) -> None:
    """Show an org's standing and record: stake, balance, participation, rewards, slashes, history.

    Participation lists every (job, round) the org registered for: whether it submitted and voted,
    the reward it earned (balance) and the stake it lost (slashing for being absent or anomalous).
    Stake it owes to slashing but has not lost yet (the endorsement policy could not take it whole:
    it goes by whole stake levels) is shown beside its stake and cannot be transferred.
    The history is every change of stake, balance, status and slashing debt with its reason and
    transaction, from genesis on.
    """
    with query(org, user, config, run_dir, as_json) as q:
        s = audit.org_summary(q.client, msp)
    if as_json:
        emit_json({"ok": True, **s})
        return
    con = console()
    con.print(f"[bold]{s['msp_id']}[/] ({s['name']}, {s['status']}): stake {s['stake']}, balance {s['balance']} · "
              f"earned {s['rewards']} in round settlements, {s['slashed']} stake slashed"
              + (f", {s['slash_owed']} still owed" if s["slash_owed"] else ""))
    t = table("Participation", "job", "round", "registered", "submitted", "voted", "reward", "slashed")
    for r in s["rounds"]:
        t.add_row(r["job_id"], str(r["round"]), "yes" if r["registered"] else "no", "yes" if r["submitted"] else "no",
                  "yes" if r["voted"] else "no", str(r["reward"]), str(r["slash"]))
    con.print(t)
    h = table("Stake, balance and debt history", "#", "time (UTC)", "field", "change", "before", "after", "reason",
              "reference", "transaction")
    for e in s["history"]:
        ref = ", ".join(f"{k}={v}" for k, v in sorted((e.get("ref") or {}).items())) or "-"
        h.add_row(str(e.get("seq")), utc(e.get("ts")), e.get("field", "-"), f"{e.get('delta', 0):+d}",
                  str(e.get("before")), str(e.get("after")), e.get("reason", "-"), ref, short(e.get("tx_id"), 12))
    con.print(h)


@app.command("verify")
@manual
def audit_verify(file: Annotated[Path, typer.Argument(metavar="FILE", help="Model file written by "
                                                      "`fedfabric model export`.", show_default=False)],
                 store: Annotated[Optional[Path], typer.Option(
                     "--store", show_default=False, file_okay=False,
                     help="Also check this artifact store's copy of the parameters.")] = None,
                 org: Org = "org1", user: User = "Auditor", run_dir: RunDir = None, config: Config = None,
                 as_json: Json = False) -> None:
    """Verify a model file against the ledger.

    The model hash is [bold]recomputed[/] from the parameters (SHA-256 of the little-endian float32
    vector); the hash written in the file is never trusted. Checks: the parameters hash to what the
    file claims; the state dict equals the flat vector; the claimed job exists; a version of it has
    exactly this hash, and it is the claimed version; that version is finalized; its lineage holds back
    to version 0 (see [cyan]audit lineage[/]); the lineage embedded in the file matches; the architecture
    and parameter count match the job spec.

    Exit 0 verified, 1 any check failed (each failure is named, e.g. [dim]the parameters were changed:
    they hash to 9f2c…, but the file says 61a9…[/]), 2 the file is missing or not a fedfabric model file.
    """
    if not file.is_file():
        fail(f"{file}: no such file", as_json=as_json)
    with query(org, user, config, run_dir, as_json) as q:
        from ..artifacts import ArtifactStore

        res = audit.verify(q.client, file, ArtifactStore(store) if store is not None else None)
    if as_json:
        emit_json(res.to_dict())
    else:
        con = console()
        t = table(f"Verification of {file}", "check", "result", "detail")
        for c in res.checks:
            t.add_row(c.name, "[green]ok[/]" if c.ok else "[red]FAILED[/]", c.detail)
        con.print(t)
        con.print(f"[green]VERIFIED[/]: version {res.version} of job {res.job_id} ({res.status}), model hash "
                  f"{short(res.computed_hash, 16)}, lineage intact back to version 0" if res.ok
                  else f"[red]NOT VERIFIED[/]: {len(res.problems)} check(s) failed")
    if not res.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command("report")
@manual
def audit_report(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                 out: Annotated[Optional[Path], typer.Option(
                     "--out", show_default=False, file_okay=False,
                     help="Directory to write into. [dim]Default: reports/<JOB> in the current directory.[/]")] = None,
                 store: Store = None,
                 org: Org = "org1", user: User = "Auditor", run_dir: RunDir = None, config: Config = None,
                 as_json: Json = False) -> None:
    """Write a job's audit report: report.html (self-contained), report.json and PNG plots.

    The page shows: the job's status and lineage verdict; accuracy and loss per round (the orgs' vote
    metrics, stake-weighted); each round's contributors (org, sample count, update hash), votes and
    stake; rewards and slashes per round and the orgs' balances; the lineage with transaction ids,
    blocks and whether the store holds each version's parameters; the job spec. report.json carries
    the same data.

    Exit 1 if the lineage is broken (the report is still written and says so).
    """
    out_dir = out or Path("reports") / job
    with query(org, user, config, run_dir, as_json) as q:
        from ..artifacts import ArtifactStore

        st = store if store is not None else node_store(q)
        files = audit.report(q.client, job, out_dir, store=ArtifactStore(st) if st.is_dir() else None)
    summary = files.data["summary"]
    if as_json:
        emit_json({"ok": summary["lineage_ok"], "html": str(files.html), "json": str(files.json),
                   "images": [str(p) for p in files.images], "summary": summary})
    else:
        con = console()
        con.print(f"report for job {job}: [bold]{files.html}[/] (data: {files.json.name}, plots: "
                  f"{', '.join(p.name for p in files.images) or 'none'})")
        con.print("[green]lineage intact[/]" if summary["lineage_ok"] else f"[red]lineage BROKEN[/]: "
                  f"{summary['lineage_error']}")
    if not summary["lineage_ok"]:
        raise typer.Exit(EXIT_FAILED)


@app.command("prov")
@manual
def audit_prov(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
               out: Annotated[Path, typer.Option("--out", dir_okay=False, show_default=False,
                                                 help="PROV-JSON file to write (e.g. job1.prov.json).")],
               org: Org = "org1", user: User = "Auditor", run_dir: RunDir = None, config: Config = None,
               as_json: Json = False) -> None:
    """Write a job's lineage as W3C PROV-JSON, for provenance tools.

    Entities: every model version ([italic]model:<sha256>[/], typed ff:ModelVersion, with its number,
    round, rule, privacy and approving stake), every update ([italic]update:<sha256>[/], with its org and
    sample count) and any candidate a voter evaluated that did not become a version. Activities: the
    job's creation, and per round its training, its aggregation (finalized or failed, with the reason)
    and each org's vote. Agents: the member orgs ([italic]org:<MSP>[/], prov:Organization) with their
    stake and balance.

    Relations: wasDerivedFrom (a version from its parent and from each update it aggregates, an update
    from its round's base version), wasGeneratedBy, used, wasAssociatedWith (with the org's role —
    creator, trainer, finalizer, voter — and its stake in the round), wasAttributedTo and wasInformedBy
    (an aggregation by the votes it tallied). Every relation backed by a transaction carries ff:tx_id
    and ff:block; the ff: terms are in the namespace urn:fedfabric:terms#.

    The lineage is checked first, as [cyan]audit lineage[/] does: exit 1 with the broken link named and
    no file written. Read it back with the [bold]prov[/] package, e.g. [dim]prov.read("job1.prov.json",
    format="json")[/], or convert it with its [dim]prov-convert[/].
    """
    with query(org, user, config, run_dir, as_json) as q:
        from ..audit.prov import record_counts, write_prov

        counts = record_counts(write_prov(q.client, job, out))
    if as_json:
        emit_json({"ok": True, "job_id": job, "out": str(out), "records": counts})
        return
    console().print(f"wrote [bold]{out}[/]: PROV-JSON of job {job} — "
                    + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


@app.command("chain")
@manual
def audit_chain(start: Annotated[int, typer.Option("--from", min=0, help="First block to check.")] = 0,
                org: Org = "org1", user: User = "Auditor", run_dir: RunDir = None, config: Config = None,
                as_json: Json = False) -> None:
    """Check the channel's hash chain on every org's peer, and that the peers agree.

    Each peer's blocks are read through qscc and checked one by one: the data of every block hashes
    to its header's data hash and every header names the hash of the header before it; the last
    block's hash is the peer's reported chain tip. Then the peers are compared: all must have the
    same hash for the highest block they all hold. Exit status 1 if any check fails.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..audit.chain import compare_peers, verify_chain

    with peers(where(org, config, run_dir, as_json=as_json), user, as_json=as_json) as qsccs:
        checks = []
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      disable=as_json or not sys.stderr.isatty(), console=None) as prog:
            for name, q in qsccs.items():
                task = prog.add_task(name, total=None)
                checks.append(verify_chain(q, name, start, progress=lambda d, t, task=task: prog.update(
                    task, completed=d, total=t)))
        agreement = compare_peers(qsccs)
    ok = all(c.ok for c in checks) and agreement["agree"]
    if as_json:
        emit_json({"ok": ok, "peers": [c.to_dict() for c in checks], "agreement": agreement})
    else:
        con = console()
        t = table("Hash chain per peer", "peer", "height", "blocks checked", "tip hash", "result")
        for c in checks:
            t.add_row(c.peer, str(c.height), str(c.checked), short(c.tip_hash, 16),
                      "[green]intact[/]" if c.ok else "[red]" + "; ".join(c.problems[:3]) + "[/]")
        con.print(t)
        con.print(f"peers agree on block {agreement['common_height'] - 1}: "
                  + ("[green]yes[/]" if agreement["agree"] else "[red]NO[/] " + str(agreement["hash_at_common_height"])))
    if not ok:
        raise typer.Exit(EXIT_FAILED)
