"""``fedfabric model …``: the global model versions of a training job: list them, show one, point an alias
at one, export one as a file anyone can verify against the ledger.

Exit status: 0 success; 1 a check failed (the stored parameters are not the ledger's, a broken lineage);
2 bad input (unknown job or version, no identity, ledger unreachable, refused) with a one-line message.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import audit
from ..audit.common import ask, metric_kind, short
from ..audit.lineage import approved_stake
from .common import (QUERY_HELP, Config, Json, Org, RunDir, Store, User, console, emit_json, manual,
                     metrics_text, node_store, query, table, utc)

app = typer.Typer(
    name="model", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    help="The global model versions of a training job: list them, show one, export one as a verified file.\n\n"
         "A version is identified by its number ([cyan]3[/]) or an alias ([cyan]latest[/], or one set by an "
         "admin). By default as the org's [bold]User1[/] identity.\n\n" + QUERY_HELP)


def _headline_metric(v: dict) -> str:
    stakes = {a["msp_id"]: a.get("stake", 0) for a in v.get("approvals", [])}
    comb = audit.combine_metrics(v.get("metrics") or {}, stakes)
    for name in sorted(comb, key=lambda n: (metric_kind(n) != "accuracy", "acc" not in n, n)):
        if metric_kind(name) == "accuracy" and comb[name]["weighted"] is not None:
            return f"{name} {comb[name]['weighted']:.4f}"
    return "-"


@app.command("list")
@manual
def model_list(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
               org: Org = "org1", user: User = "User1", run_dir: RunDir = None, config: Config = None,
               as_json: Json = False) -> None:
    """List a job's model versions: round, status, hash, contributors, approval, accuracy, aliases."""
    with query(org, user, config, run_dir, as_json) as q:
        versions = ask(q.client.list_versions, job)
        aliases = ask(q.client.list_aliases, job)
    by_version: dict[int, list[str]] = {}
    for a, n in sorted(aliases.items()):
        by_version.setdefault(int(n), []).append(a)
    if as_json:
        emit_json({"ok": True, "job_id": job, "aliases": aliases, "versions": versions})
        return
    t = table(f"Model versions of job {job}", "version", "round", "status", "model hash", "contributors",
              "approving stake", "accuracy (stake-weighted)", "created (UTC)", "aliases")
    for v in sorted(versions, key=lambda v: int(v["version"])):
        ok, total, _ = approved_stake(v) if v.get("parents") else (0, 0, None)
        t.add_row(str(v["version"]), str(v.get("round", 0)), v.get("status", "-"), short(v["model_hash"], 16),
                  str(len(v.get("contributors", []))), f"{ok}/{total}" if v.get("parents") else "-",
                  _headline_metric(v), utc(v.get("created_at")), ", ".join(by_version.get(int(v["version"]), [])) or "-")
    console().print(t)


@app.command("show")
@manual
def model_show(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
               ref: Annotated[str, typer.Argument(metavar="REF", help="Version number or alias (latest).",
                                                  show_default=False)],
               org: Org = "org1", user: User = "User1", run_dir: RunDir = None, config: Config = None,
               as_json: Json = False) -> None:
    """Show one model version as the ledger recorded it.

    Its hashes (model, parent, aggregate), round, aggregation rule and privacy mode, contributors with
    sample counts and update hashes, each org's vote with stake and metrics, rewards and slashes,
    differential-privacy budget spent, tags, and the transactions that produced it.
    """
    with query(org, user, config, run_dir, as_json) as q:
        v = ask(q.client.get_version, job, ref)
    if as_json:
        emit_json({"ok": True, **v})
        return
    con = console()
    con.print(f"[bold]Version {v['version']} of job {job}[/] ({v.get('status')}) · round {v.get('round')} · "
              f"created {utc(v.get('created_at'))} UTC")
    info = table("", "field", "value")
    for k in ("model_hash", "parent_hash", "aggregate_hash", "privacy", "exchange", "dp_epsilon_total_milli"):
        if v.get(k) is not None:
            info.add_row(k, str(v[k]))
    if v.get("rule"):
        rule = dict(v["rule"])
        name = rule.pop("rule", "-")
        info.add_row("rule", name + (f" ({', '.join(f'{k}={x}' for k, x in sorted(rule.items()))})" if rule else ""))
    if v.get("flagged"):
        info.add_row("flagged updates", ", ".join(v["flagged"]))
    if v.get("tags"):
        info.add_row("tags", ", ".join(f"{k}={x}" for k, x in sorted(v["tags"].items())))
    con.print(info)
    if v.get("contributors"):
        c = table("Contributors", "org", "samples", "update hash")
        for x in v["contributors"]:
            c.add_row(x["msp_id"], str(x.get("sample_count")), short(x.get("update_hash"), 16))
        con.print(c)
    if v.get("approvals"):
        a = table("Votes", "org", "stake", "vote", "model hash voted", "metrics", "reward", "slashed")
        for x in v["approvals"]:
            a.add_row(x["msp_id"], str(x.get("stake")), "approve" if x.get("approve") else "reject",
                      short(x.get("model_hash"), 12), metrics_text((v.get("metrics") or {}).get(x["msp_id"], {})),
                      str((v.get("rewards") or {}).get(x["msp_id"], 0)), str((v.get("slashed") or {}).get(x["msp_id"], 0)))
        con.print(a)
    txs = table("Transactions", "step", "transaction")
    order = ("create", "opened", "started", "updates", "votes", "finalize")
    for k, t in sorted((v.get("tx_ids") or {}).items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order
                                                                        else len(order), kv[0])):
        if isinstance(t, str):
            txs.add_row(k, t)
        elif isinstance(t, dict):
            for m, u in sorted(t.items()):
                txs.add_row(f"{k} ({m})", str(u))
    con.print(txs)


@app.command("promote")
@manual
def model_promote(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                  version: Annotated[int, typer.Argument(help="The finalized version to point the alias at.",
                                                         show_default=False)],
                  alias: Annotated[str, typer.Option("--alias", help="The alias to set.")] = "production",
                  org: Org = "org1",
                  user: Annotated[str, typer.Option("--user", help="Identity to sign with: an org admin "
                                                                   "(trainers and auditors are refused).")] = "Admin",
                  run_dir: RunDir = None, config: Config = None, as_json: Json = False) -> None:
    """Point an alias such as [cyan]production[/] or [cyan]staging[/] at a finalized version, on the ledger.

    Like a model registry's aliases, but every move is a transaction, so the alias key's history on the
    ledger shows who pointed it where and when. [cyan]latest[/] is kept by the ledger itself and
    cannot be set. Afterwards every command that takes a version accepts the alias
    ([cyan]model export JOB production[/]).

    Exit 2 if the version is not finalized, the alias is reserved or malformed, or the identity may not
    write.
    """
    with query(org, user, config, run_dir, as_json) as q:
        w = q.client.set_alias(job, alias, version)
    if as_json:
        emit_json({"ok": True, "job_id": job, "alias": alias, "version": version, "tx_id": w.tx_id,
                   "block": w.block_number})
        return
    console().print(f"{alias} → version {version} of job {job} (tx {short(w.tx_id, 16)}, block {w.block_number})")


@app.command("export")
@manual
def model_export(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                 ref: Annotated[str, typer.Argument(metavar="REF", help="Version number or alias (latest).",
                                                    show_default=False)],
                 out: Annotated[Path, typer.Option("--out", dir_okay=False, show_default=False,
                                                   help="Model file to write (.pt).")],
                 store: Store = None,
                 org: Org = "org1", user: User = "User1", run_dir: RunDir = None, config: Config = None,
                 as_json: Json = False) -> None:
    """Export a model version as a file anyone can verify against the ledger.

    The parameters are read from the artifact store and must hash to the version's
    [italic]model_hash[/] on the ledger, and the version's lineage must hold, before anything is
    written. The file (a torch .pt) holds the flat parameter vector, the state dict for the job's
    architecture, and the lineage back to version 0 with transaction ids. The written file is then
    verified as [cyan]audit verify[/] would.

    Exit 1 if the stored parameters are not the ledger's (corrupted store) or the lineage is broken,
    2 if the store does not hold this version.
    """
    with query(org, user, config, run_dir, as_json) as q:
        from ..artifacts import ArtifactStore

        st = ArtifactStore(store if store is not None else node_store(q))
        res = audit.export_version(q.client, job, ref, out, st)
    if as_json:
        emit_json({**res.to_dict(), "out": str(out)})
        return
    console().print(f"wrote [bold]{out}[/]: version {res.version} of job {job}, model hash "
                    f"{short(res.computed_hash, 16)}, lineage of {len(res.lineage)} versions — verified")
