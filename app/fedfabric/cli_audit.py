"""``fedfabric audit …`` and ``fedfabric model …``: read the ledger, check it, export what it vouches for.

Mounted by :mod:`fedfabric.cli` as ``app.add_typer(audit_app, name="audit")`` and
``app.add_typer(model_app, name="model")``. Every command only reads the ledger.

Exit status: 0 success; 1 a check failed (broken lineage, tampered or unknown model file,
parameters that do not hash to the ledger's value); 2 bad input (unknown job, version, round or
org, missing file, not a model file, no identity, ledger unreachable) with a one-line message.
"""
from __future__ import annotations

import datetime as _dt
import inspect
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ContextManager, Iterator, Optional

import typer

from . import audit
from .audit import AuditError, BadInput
from .audit.common import ask, metric_kind, scale_metric, short
from .audit.lineage import approved_stake

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

_COMMON = ("[bold]Connecting.[/] Queries go to the peer of [cyan]--org[/] as [cyan]--user[/], using the "
           "network's own crypto material under [cyan]--run-dir[/] and the consortium definition in "
           "[cyan]--config[/] (the same files [cyan]network/network.sh up[/] created).\n\n"
           "[bold]Exit status.[/] 0 success · 1 a check failed · 2 bad input (unknown job, version, org or "
           "file; no identity; ledger unreachable), always with a one-line message.")

audit_app = typer.Typer(
    name="audit", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    help="Audit the consortium's ledger: trace a model to version 0, inspect rounds and orgs, verify a model "
         "file, write a report or a W3C PROV-JSON lineage.\n\n"
         "Every command only reads; by default as the org's [bold]Auditor[/] identity (read-only role). "
         "Add [cyan]--json[/] for machine-readable output.\n\n" + _COMMON)
model_app = typer.Typer(
    name="model", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    help="The global model versions of a training job: list them, show one, export one as a verified file.\n\n"
         "A version is identified by its number ([cyan]3[/]) or an alias ([cyan]latest[/], or one set by an "
         "admin). By default as the org's [bold]User1[/] identity.\n\n" + _COMMON)


# ---- connecting (tests replace ``client_factory``)
@contextmanager
def _open_ledger(org: str, user: str, config: Path, run_dir: Path) -> Iterator[Any]:
    from .client import open_client
    from .network.definition import load_site_config

    gw, client = open_client(org, user, config=load_site_config(config, run_dir), run_root=run_dir)
    try:
        yield client
    finally:
        gw.close()


def client_factory(org: str, user: str, config: Path, run_dir: Path) -> ContextManager[Any]:
    """A context manager yielding a :class:`fedfabric.client.FedFabricClient` for ``org`` as ``user``.

    Module-level so tests (and embedders) can replace it: ``monkeypatch.setattr(cli_audit,
    "client_factory", fake)`` where ``fake(org, user, config, run_dir)`` returns a context manager.
    """
    return _open_ledger(org, user, config, run_dir)


@contextmanager
def _open_peers(org: str, user: str, config: Path, run_dir: Path) -> Iterator[dict[str, Any]]:
    """qscc of every org's peer, each queried with ``org``'s ``user`` identity (any channel member may read)."""
    from .ledger import Gateway, Identity
    from .network.definition import load_site_config
    from .network.layout import Layout

    cfg = load_site_config(config, run_dir)
    layout = Layout(Path(run_dir).resolve(), cfg)
    me = cfg.org(org)
    msp = layout.user_msp(me, user)
    if not msp.exists():
        raise BadInput(f"no identity {user!r} for {me.name}: {msp} is missing")
    ident = Identity.from_msp_dir(msp_id=me.msp_id, msp_dir=msp)
    gws = {o.name: Gateway.connect(endpoint=layout.peer_endpoint(o), identity=ident, tls_root_cert=layout.peer_tls_ca(o))
           for o in cfg.orgs}
    try:
        yield {f"{o.peer.name}.{o.name}": gws[o.name].get_network(cfg.channel).qscc() for o in cfg.orgs}
    finally:
        for g in gws.values():
            g.close()


def peers_factory(org: str, user: str, config: Path, run_dir: Path) -> ContextManager[dict[str, Any]]:
    """Context manager yielding ``{peer name: Qscc}`` for every org's peer (replaceable in tests)."""
    return _open_peers(org, user, config, run_dir)


def _defaults(config: Optional[Path], run_dir: Optional[Path]) -> tuple[Path, Path]:
    from .network import paths

    return (config or paths.DEFAULT_CONFIG), (run_dir or paths.run_dir())


def default_store(org: str, config: Path, run_dir: Path) -> Path:
    """The org node's artifact store: ``<run-dir>/fl/<org>/artifacts`` (``org`` as named in the config)."""
    name = org
    try:
        from .network.config import load_config

        o = load_config(config).org(org)
        candidates = [run_dir / "fl" / o.name / "artifacts", run_dir / "fl" / o.msp_id / "artifacts"]
    except Exception:  # noqa: BLE001 - without a readable config, use the name as given
        candidates = [run_dir / "fl" / name / "artifacts"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


# ---- output and errors
def _console() -> Any:
    """Rich console on stdout; piped output (no terminal, no $COLUMNS) gets 160 columns, not 80."""
    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, soft_wrap=False, width=160 if wide else None)


def manual(fn: Any) -> Any:
    """Help that reads like a manual: each docstring paragraph becomes one line, so it wraps to the
    terminal rather than to the source; a paragraph starting with ``\\b`` keeps its lines (examples)."""
    doc = inspect.cleandoc(fn.__doc__ or "")
    paras = []
    for para in doc.split("\n\n"):
        if para.startswith("\b"):
            paras.append(para[1:].strip("\n"))
        else:
            paras.append(" ".join(line.strip() for line in para.splitlines()))
    fn.__doc__ = "\n\n".join(paras)
    return fn


def _emit_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _stop(code: int, message: str, as_json: bool) -> None:
    if as_json:
        _emit_json({"ok": False, "exit_code": code, "error": message})
    else:
        typer.secho(("error: " if code == EXIT_BAD_INPUT else "FAILED: ") + message, err=True,
                    fg="red" if code == EXIT_FAILED else None)
    raise typer.Exit(code)


@contextmanager
def _guard(as_json: bool) -> Iterator[None]:
    """Turn every expected failure into a message and an exit status (never a traceback)."""
    from .artifacts import ArtifactError
    from .client import Rejected
    from .ledger import GatewayError
    from .network.config import ConfigError

    try:
        yield
    except typer.Exit:
        raise
    except AuditError as exc:
        _stop(EXIT_FAILED, str(exc), as_json)
    except (BadInput, ArtifactError, ConfigError, FileNotFoundError) as exc:
        _stop(EXIT_BAD_INPUT, str(exc), as_json)
    except Rejected as exc:
        _stop(EXIT_BAD_INPUT, f"the ledger refused {exc.function}: {exc.message}", as_json)
    except GatewayError as exc:
        _stop(EXIT_BAD_INPUT, f"cannot query the ledger: {exc} (is the network up? network/network.sh status)", as_json)
    except OSError as exc:
        _stop(EXIT_BAD_INPUT, f"{type(exc).__name__}: {exc}", as_json)


@contextmanager
def _session(org: str, user: str, config: Optional[Path], run_dir: Optional[Path], as_json: bool) -> Iterator[Any]:
    cfg, run = _defaults(config, run_dir)
    with _guard(as_json), client_factory(org, user, cfg, run) as client:
        yield client


def _ts(t: Any) -> str:
    if not isinstance(t, int):
        return "-"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _metrics_text(raw: dict) -> str:
    return ", ".join(f"{n}={v:.4g}" if isinstance(v, float) else f"{n}={v}"
                     for n, v in (scale_metric(k, x) for k, x in sorted((raw or {}).items()))) or "-"


def _table(title: str, *cols: str) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False)
    for c in cols:
        t.add_column(c, overflow="fold")
    return t


# ---- shared options
Org = Annotated[str, typer.Option("--org", help="Org whose peer answers: its name in consortium.yaml (org1) or MSP id.")]
AuditUser = Annotated[str, typer.Option("--user", help="Identity to query as. [bold]Auditor[/] holds the read-only "
                                                       "auditor role; User1 and Admin can read too.")]
ModelUser = Annotated[str, typer.Option("--user", help="Identity to query as (User1, Admin or Auditor).")]
RunDir = Annotated[Optional[Path], typer.Option(
    "--run-dir", show_default=False, file_okay=False,
    help="Network state directory with the identities. [dim]Default: $FEDFABRIC_RUN_DIR, else run/ in the repository.[/]")]
Config = Annotated[Optional[Path], typer.Option(
    "--config", show_default=False, dir_okay=False,
    help="Consortium definition. [dim]Default: network/consortium.yaml.[/]")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables (errors too, as "
                                                   "{\"ok\": false, \"error\": …}).")]
StoreOpt = Annotated[Optional[Path], typer.Option(
    "--store", show_default=False, file_okay=False,
    help="Artifact store holding model parameters by hash. [dim]Default: the org node's store, "
         "<run-dir>/fl/<org>/artifacts.[/]")]


# ======================================================================= audit
@audit_app.command("lineage")
@manual
def audit_lineage(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                  ref: Annotated[str, typer.Option("--ref", help="Version number or alias to start from.")] = "latest",
                  org: Org = "org1", user: AuditUser = "Auditor", run_dir: RunDir = None, config: Config = None,
                  as_json: Json = False) -> None:
    """Trace a model version back to version 0, checking every link.

    For each version: its parent is the previous version, its [italic]parent_hash[/] is the parent's
    [italic]model_hash[/], it is finalized, the stake that approved exactly its hash reached the round's
    quorum, and its round is recorded as finalized into it. Version 0 must carry the job's
    [italic]initial_hash[/]. Prints each version with its hashes, approving stake, transaction and block.

    Exit 1 with the first broken link named, e.g. [dim]version 2 says its parent (version 1) has model
    hash 3bf9…, but version 1 records 0000…[/].
    """
    with _session(org, user, config, run_dir, as_json) as client:
        chain = audit.lineage(client, job, ref)
    if as_json:
        _emit_json({"ok": True, "job_id": job, "ref": ref, "lineage": chain})
        return
    t = _table(f"Lineage of job {job} from {ref}", "version", "round", "status", "model hash", "parent hash",
               "approving stake", "transaction", "block")
    for x in chain:
        t.add_row(str(x["version"]), str(x["round"]), x["status"] or "-", short(x["model_hash"], 16),
                  short(x["parent_hash"], 16), f"{x['approved_stake']}/{x['total_stake']}" if x["parents"] else "-",
                  short(x["tx_id"], 12), "-" if x["block"] is None else str(x["block"]))
    con = _console()
    con.print(t)
    con.print(f"[green]lineage intact[/]: {len(chain)} versions, version {chain[0]['version']} → 0, every link checked")


@audit_app.command("round")
@manual
def audit_round(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                round_: Annotated[int, typer.Argument(metavar="N", min=1, help="Round number (1, 2, …).",
                                                      show_default=False)],
                org: Org = "org1", user: AuditUser = "Auditor", run_dir: RunDir = None, config: Config = None,
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
    with _session(org, user, config, run_dir, as_json) as client:
        s = audit.round_summary(client, job, round_)
    if as_json:
        _emit_json({"ok": True, **s})
        return
    con = _console()
    head = (f"[bold]Round {s['round']} of job {job}[/]: {s['state']}"
            + ("" if s["closed"] else f" ({s['phase']})")
            + (f" ({s['reason']})" if s["reason"] else "")
            + f" · leader {s['leader']} · base version {s['base_version']}"
            + (f" → version {s['version']} ({short(s['model_hash'], 16)})" if s["version"] is not None else ""))
    con.print(head)
    t = _table("Participants", "org", "stake", "participant", "submitted", "samples", "update hash",
               "seeds revealed for", "vote", "vote metrics", "reward", "slashed")
    for p in s["participants"]:
        t.add_row(p["msp_id"], str(p["stake"]), "yes" if p["participant"] else "no",
                  "yes" if p["submitted"] else ("left out" if p["left_out"] else "no"),
                  "-" if p["sample_count"] is None else str(p["sample_count"]), short(p["update_hash"], 12),
                  ", ".join(p["revealed_for"]) or "-", p["vote"] or "-", _metrics_text(p["vote_metrics"]),
                  str(p["reward"]), str(p["slashed"]))
    con.print(t)
    tally = s.get("tally") or {}
    if tally:
        models = {p["vote_result_key"]: p["vote_model_hash"] for p in s["participants"] if p["vote_result_key"]}
        by_result = ", ".join(f"model {short(models.get(k), 12)}: {v}"
                              for k, v in sorted((tally.get("approve_by_result") or {}).items()))
        con.print(f"tally: approving stake by voted result {by_result or '-'} of {tally.get('total_stake')} "
                  f"(quorum {'/'.join(map(str, tally.get('quorum') or s['quorum']))})")
    tx = _table("Timeline", "step", "org", "time (UTC)", "transaction", "block")
    for e in s["timeline"]:
        tx.add_row(e["step"], e["msp_id"] or "-", _ts(e["time"]), short(e["tx_id"], 16),
                   "-" if e["block"] is None else str(e["block"]))
    con.print(tx)


@audit_app.command("org")
@manual
def audit_org(msp: Annotated[str, typer.Argument(metavar="MSP", help="Org MSP id (Org2MSP) or name (org2).",
                                                 show_default=False)],
              org: Org = "org1", user: AuditUser = "Auditor", run_dir: RunDir = None, config: Config = None,
              as_json: Json = False) -> None:
    """Show an org's standing and record: stake, balance, participation, rewards, slashes, history.

    Participation lists every (job, round) the org registered for: whether it submitted and voted,
    the reward it earned (balance) and the stake it lost (slashing for being absent or anomalous).
    The history is every stake and balance change with its reason and transaction, from genesis on.
    """
    with _session(org, user, config, run_dir, as_json) as client:
        s = audit.org_summary(client, msp)
    if as_json:
        _emit_json({"ok": True, **s})
        return
    con = _console()
    con.print(f"[bold]{s['msp_id']}[/] ({s['name']}, {s['status']}): stake {s['stake']}, balance {s['balance']} · "
              f"earned {s['rewards']} in round settlements, {s['slashed']} stake slashed")
    t = _table("Participation", "job", "round", "registered", "submitted", "voted", "reward", "slashed")
    for r in s["rounds"]:
        t.add_row(r["job_id"], str(r["round"]), "yes" if r["registered"] else "no", "yes" if r["submitted"] else "no",
                  "yes" if r["voted"] else "no", str(r["reward"]), str(r["slash"]))
    con.print(t)
    h = _table("Stake and balance history", "#", "time (UTC)", "field", "change", "before", "after", "reason",
               "reference", "transaction")
    for e in s["history"]:
        ref = ", ".join(f"{k}={v}" for k, v in sorted((e.get("ref") or {}).items())) or "-"
        h.add_row(str(e.get("seq")), _ts(e.get("ts")), e.get("field", "-"), f"{e.get('delta', 0):+d}",
                  str(e.get("before")), str(e.get("after")), e.get("reason", "-"), ref, short(e.get("tx_id"), 12))
    con.print(h)


@audit_app.command("verify")
@manual
def audit_verify(file: Annotated[Path, typer.Argument(metavar="FILE", help="Model file written by "
                                                      "`fedfabric model export`.", show_default=False)],
                 store: Annotated[Optional[Path], typer.Option(
                     "--store", show_default=False, file_okay=False,
                     help="Also check this artifact store's copy of the parameters.")] = None,
                 org: Org = "org1", user: AuditUser = "Auditor", run_dir: RunDir = None, config: Config = None,
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
        _stop(EXIT_BAD_INPUT, f"{file}: no such file", as_json)
    with _session(org, user, config, run_dir, as_json) as client:
        from .artifacts import ArtifactStore

        res = audit.verify(client, file, ArtifactStore(store) if store is not None else None)
    if as_json:
        _emit_json(res.to_dict())
    else:
        con = _console()
        t = _table(f"Verification of {file}", "check", "result", "detail")
        for c in res.checks:
            t.add_row(c.name, "[green]ok[/]" if c.ok else "[red]FAILED[/]", c.detail)
        con.print(t)
        con.print(f"[green]VERIFIED[/]: version {res.version} of job {res.job_id} ({res.status}), model hash "
                  f"{short(res.computed_hash, 16)}, lineage intact back to version 0" if res.ok
                  else f"[red]NOT VERIFIED[/]: {len(res.problems)} check(s) failed")
    if not res.ok:
        raise typer.Exit(EXIT_FAILED)


@audit_app.command("report")
@manual
def audit_report(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                 out: Annotated[Optional[Path], typer.Option(
                     "--out", show_default=False, file_okay=False,
                     help="Directory to write into. [dim]Default: reports/<JOB> in the current directory.[/]")] = None,
                 store: StoreOpt = None,
                 org: Org = "org1", user: AuditUser = "Auditor", run_dir: RunDir = None, config: Config = None,
                 as_json: Json = False) -> None:
    """Write a job's audit report: report.html (self-contained), report.json and PNG plots.

    The page shows: the job's status and lineage verdict; accuracy and loss per round (the orgs' vote
    metrics, stake-weighted); each round's contributors (org, sample count, update hash), votes and
    stake; rewards and slashes per round and the orgs' balances; the lineage with transaction ids,
    blocks and whether the store holds each version's parameters; the job spec. report.json carries
    the same data.

    Exit 1 if the lineage is broken (the report is still written and says so).
    """
    cfg, run = _defaults(config, run_dir)
    out_dir = out or Path("reports") / job
    with _session(org, user, config, run_dir, as_json) as client:
        from .artifacts import ArtifactStore

        st = store if store is not None else default_store(org, cfg, run)
        files = audit.report(client, job, out_dir, store=ArtifactStore(st) if st.is_dir() else None)
    summary = files.data["summary"]
    if as_json:
        _emit_json({"ok": summary["lineage_ok"], "html": str(files.html), "json": str(files.json),
                    "images": [str(p) for p in files.images], "summary": summary})
    else:
        con = _console()
        con.print(f"report for job {job}: [bold]{files.html}[/] (data: {files.json.name}, plots: "
                  f"{', '.join(p.name for p in files.images) or 'none'})")
        con.print("[green]lineage intact[/]" if summary["lineage_ok"] else f"[red]lineage BROKEN[/]: "
                  f"{summary['lineage_error']}")
    if not summary["lineage_ok"]:
        raise typer.Exit(EXIT_FAILED)


@audit_app.command("prov")
@manual
def audit_prov(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
               out: Annotated[Path, typer.Option("--out", dir_okay=False, show_default=False,
                                                 help="PROV-JSON file to write (e.g. job1.prov.json).")],
               org: Org = "org1", user: AuditUser = "Auditor", run_dir: RunDir = None, config: Config = None,
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
    with _session(org, user, config, run_dir, as_json) as client:
        from .audit.prov import record_counts, write_prov

        counts = record_counts(write_prov(client, job, out))
    if as_json:
        _emit_json({"ok": True, "job_id": job, "out": str(out), "records": counts})
        return
    _console().print(f"wrote [bold]{out}[/]: PROV-JSON of job {job} — "
                     + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


# ======================================================================= model
def _headline_metric(v: dict) -> str:
    stakes = {a["msp_id"]: a.get("stake", 0) for a in v.get("approvals", [])}
    comb = audit.combine_metrics(v.get("metrics") or {}, stakes)
    for name in sorted(comb, key=lambda n: (metric_kind(n) != "accuracy", "acc" not in n, n)):
        if metric_kind(name) == "accuracy" and comb[name]["weighted"] is not None:
            return f"{name} {comb[name]['weighted']:.4f}"
    return "-"


@model_app.command("list")
@manual
def model_list(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
               org: Org = "org1", user: ModelUser = "User1", run_dir: RunDir = None, config: Config = None,
               as_json: Json = False) -> None:
    """List a job's model versions: round, status, hash, contributors, approval, accuracy, aliases."""
    with _session(org, user, config, run_dir, as_json) as client:
        versions = ask(client.list_versions, job)
        aliases = ask(client.list_aliases, job) if hasattr(client, "list_aliases") else {}
    by_version: dict[int, list[str]] = {}
    for a, n in sorted(aliases.items()):
        by_version.setdefault(int(n), []).append(a)
    if as_json:
        _emit_json({"ok": True, "job_id": job, "aliases": aliases, "versions": versions})
        return
    t = _table(f"Model versions of job {job}", "version", "round", "status", "model hash", "contributors",
               "approving stake", "accuracy (stake-weighted)", "created (UTC)", "aliases")
    for v in sorted(versions, key=lambda v: int(v["version"])):
        ok, total, _ = approved_stake(v) if v.get("parents") else (0, 0, None)
        t.add_row(str(v["version"]), str(v.get("round", 0)), v.get("status", "-"), short(v["model_hash"], 16),
                  str(len(v.get("contributors", []))), f"{ok}/{total}" if v.get("parents") else "-",
                  _headline_metric(v), _ts(v.get("created_at")), ", ".join(by_version.get(int(v["version"]), [])) or "-")
    _console().print(t)


@model_app.command("show")
@manual
def model_show(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
               ref: Annotated[str, typer.Argument(metavar="REF", help="Version number or alias (latest).",
                                                  show_default=False)],
               org: Org = "org1", user: ModelUser = "User1", run_dir: RunDir = None, config: Config = None,
               as_json: Json = False) -> None:
    """Show one model version as the ledger recorded it.

    Its hashes (model, parent, aggregate), round, aggregation rule and privacy mode, contributors with
    sample counts and update hashes, each org's vote with stake and metrics, rewards and slashes,
    differential-privacy budget spent, tags, and the transactions that produced it.
    """
    with _session(org, user, config, run_dir, as_json) as client:
        v = ask(client.get_version, job, ref)
    if as_json:
        _emit_json({"ok": True, **v})
        return
    con = _console()
    con.print(f"[bold]Version {v['version']} of job {job}[/] ({v.get('status')}) · round {v.get('round')} · "
              f"created {_ts(v.get('created_at'))} UTC")
    info = _table("", "field", "value")
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
        c = _table("Contributors", "org", "samples", "update hash")
        for x in v["contributors"]:
            c.add_row(x["msp_id"], str(x.get("sample_count")), short(x.get("update_hash"), 16))
        con.print(c)
    if v.get("approvals"):
        a = _table("Votes", "org", "stake", "vote", "model hash voted", "metrics", "reward", "slashed")
        for x in v["approvals"]:
            a.add_row(x["msp_id"], str(x.get("stake")), "approve" if x.get("approve") else "reject",
                      short(x.get("model_hash"), 12), _metrics_text((v.get("metrics") or {}).get(x["msp_id"], {})),
                      str((v.get("rewards") or {}).get(x["msp_id"], 0)), str((v.get("slashed") or {}).get(x["msp_id"], 0)))
        con.print(a)
    txs = _table("Transactions", "step", "transaction")
    order = ("create", "opened", "started", "updates", "votes", "finalize")
    for k, t in sorted((v.get("tx_ids") or {}).items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order
                                                                        else len(order), kv[0])):
        if isinstance(t, str):
            txs.add_row(k, t)
        elif isinstance(t, dict):
            for m, u in sorted(t.items()):
                txs.add_row(f"{k} ({m})", str(u))
    con.print(txs)


@model_app.command("promote")
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
    with _session(org, user, config, run_dir, as_json) as client:
        w = client.set_alias(job, alias, version)
    if as_json:
        _emit_json({"ok": True, "job_id": job, "alias": alias, "version": version, "tx_id": w.tx_id,
                    "block": w.block_number})
        return
    _console().print(f"{alias} → version {version} of job {job} (tx {short(w.tx_id, 16)}, block {w.block_number})")


@model_app.command("export")
@manual
def model_export(job: Annotated[str, typer.Argument(help="Training job id.", show_default=False)],
                 ref: Annotated[str, typer.Argument(metavar="REF", help="Version number or alias (latest).",
                                                    show_default=False)],
                 out: Annotated[Path, typer.Option("--out", dir_okay=False, show_default=False,
                                                   help="Model file to write (.pt).")],
                 store: StoreOpt = None,
                 org: Org = "org1", user: ModelUser = "User1", run_dir: RunDir = None, config: Config = None,
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
    cfg, run = _defaults(config, run_dir)
    with _session(org, user, config, run_dir, as_json) as client:
        from .artifacts import ArtifactStore

        st = ArtifactStore(store if store is not None else default_store(org, cfg, run))
        res = audit.export_version(client, job, ref, out, st)
    if as_json:
        _emit_json({**res.to_dict(), "out": str(out)})
        return
    _console().print(f"wrote [bold]{out}[/]: version {res.version} of job {job}, model hash "
                     f"{short(res.computed_hash, 16)}, lineage of {len(res.lineage)} versions — verified")


__all__ = ["audit_app", "model_app", "client_factory", "default_store", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT"]


@audit_app.command("chain")
@manual
def audit_chain(start: Annotated[int, typer.Option("--from", min=0, help="First block to check.")] = 0,
                org: Org = "org1", user: AuditUser = "Auditor", run_dir: RunDir = None, config: Config = None,
                as_json: Json = False) -> None:
    """Check the channel's hash chain on every org's peer, and that the peers agree.

    Each peer's blocks are read through qscc and checked one by one: the data of every block hashes
    to its header's data hash and every header names the hash of the header before it; the last
    block's hash is the peer's reported chain tip. Then the peers are compared: all must have the
    same hash for the highest block they all hold. Exit status 1 if any check fails.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .audit.chain import compare_peers, verify_chain

    cfg, run = _defaults(config, run_dir)
    with _guard(as_json), peers_factory(org, user, cfg, run) as qsccs:
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
        _emit_json({"ok": ok, "peers": [c.to_dict() for c in checks], "agreement": agreement})
    else:
        con = _console()
        t = _table("Hash chain per peer", "peer", "height", "blocks checked", "tip hash", "result")
        for c in checks:
            t.add_row(c.peer, str(c.height), str(c.checked), short(c.tip_hash, 16),
                      "[green]intact[/]" if c.ok else "[red]" + "; ".join(c.problems[:3]) + "[/]")
        con.print(t)
        con.print(f"peers agree on block {agreement['common_height'] - 1}: "
                  + ("[green]yes[/]" if agreement["agree"] else "[red]NO[/] " + str(agreement["hash_at_common_height"])))
    if not ok:
        raise typer.Exit(EXIT_FAILED)
