"""A job's audit report: one self-contained HTML page with plots, the same data as JSON, PNGs beside."""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..artifacts import ArtifactError, ArtifactStore, model_hash
from .common import ask, block_finder, combine_metrics, metric_kind, scale_metric, short
from .errors import AuditError
from .lineage import lineage
from .summary import round_summary

REPORT_FORMAT = "fedfabric-audit-report/1"


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`report` wrote: the HTML page, its JSON twin, the PNG plots, and the data itself."""

    html: Path
    json: Path
    images: list[Path] = field(default_factory=list)
    data: dict = field(default_factory=dict, repr=False)


# ---- data
def _artifact_status(store: ArtifactStore | None, digest: str) -> str:
    if store is None:
        return "not checked"
    if not store.has(digest):
        return "missing"
    try:
        return "verified" if model_hash(store.get_model(digest)) == digest else "differs"
    except ArtifactError:
        return "corrupted"


def collect(client: Any, job_id: str, store: ArtifactStore | None = None, baseline: Mapping[str, Any] | None = None) -> dict:
    """Everything the report shows, as JSON-ready data (see :func:`report`)."""
    job = ask(client.get_job, job_id)
    versions = sorted(ask(client.list_versions, job_id), key=lambda v: int(v["version"]))
    orgs = ask(client.list_orgs)
    find_block = block_finder(client)
    rounds = [round_summary(client, job_id, int(r["round"]), blocks=find_block)
              for r in sorted(ask(client.list_rounds, job_id), key=lambda r: int(r["round"]))]
    try:
        chain, lineage_error = lineage(client, job_id, "latest"), None
    except AuditError as exc:
        chain, lineage_error = [], str(exc)
    aliases = ask(client.list_aliases, job_id) if callable(getattr(client, "list_aliases", None)) else {}

    curves: list[dict] = []
    for v in versions:
        if int(v["version"]) == 0:
            continue
        stakes = {a["msp_id"]: int(a.get("stake", 0)) for a in v.get("approvals", [])}
        curves.append({"version": int(v["version"]), "round": int(v.get("round", 0)),
                       "metrics": combine_metrics(v.get("metrics") or {}, stakes)})
    training = [{"round": r["round"], "metrics": r["update_metrics"]} for r in rounds if r["update_metrics"]]

    msps = sorted(o["msp_id"] for o in orgs)
    payouts = [{"round": r["round"], "state": r["state"], "rewards": r["rewards"], "slashed": r["slashed"]}
               for r in rounds]
    totals = {m: {"rewards": sum(p["rewards"].get(m, 0) for p in payouts),
                  "slashed": sum(p["slashed"].get(m, 0) for p in payouts)} for m in msps}
    for e in chain:
        e["artifact"] = _artifact_status(store, e["model_hash"])
    return {
        "format": REPORT_FORMAT, "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "job_id": job_id, "job": job, "spec": job["spec"], "aliases": aliases,
        "summary": {"status": job.get("status"), "rounds_planned": job["spec"].get("rounds"),
                    "rounds_finalized": job.get("rounds_finalized"), "rounds_failed": job.get("rounds_failed"),
                    "latest_version": job.get("latest_version"), "created_by": job.get("created_by"),
                    "created_at": job.get("created_at"), "create_tx": job.get("tx_id"),
                    "lineage_ok": lineage_error is None, "lineage_error": lineage_error},
        "versions": [{k: v.get(k) for k in ("version", "round", "status", "model_hash", "parent_hash", "aggregate_hash",
                                            "rule", "optimizer", "privacy", "dp_epsilon_total_milli", "created_at", "tags")}
                     for v in versions],
        "rounds": rounds, "curves": curves, "training_curves": training, "lineage": chain,
        "payouts": payouts, "totals": totals,
        "orgs": [{k: o.get(k) for k in ("msp_id", "name", "status", "stake", "balance")} for o in orgs],
        "baseline": dict(baseline or {}), "store": str(store.root) if store is not None else None,
    }


# ---- plots
def _series(curves: list[dict], kind: str) -> dict[str, tuple[list[int], list[float], dict[str, list]]]:
    """metric -> (rounds, weighted means, per-org points) for metrics of one ``kind``."""
    out: dict[str, tuple[list[int], list[float], dict[str, list]]] = {}
    for c in curves:
        for name, m in c["metrics"].items():
            if metric_kind(name) != kind or m.get("weighted") is None:
                continue
            xs, ys, per = out.setdefault(name, ([], [], {}))
            xs.append(c["round"])
            ys.append(m["weighted"])
            for org, val in m["per_org"].items():
                if val is not None:
                    per.setdefault(org, []).append((c["round"], val))
    return out


def _plot(path: Path, title: str, ylabel: str, series: dict, hlines: Iterable[tuple[str, float]] = ()) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (xs, ys, per) in sorted(series.items()):
        line, = ax.plot(xs, ys, marker="o", linewidth=2, label=f"{name} (stake-weighted)")
        for org, pts in sorted(per.items()):
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, alpha=0.45, color=line.get_color())
    for (label, y), style in zip(hlines, ("--", ":", "-.", (0, (5, 1)))):
        ax.axhline(y, linestyle=style, linewidth=1.2, color="dimgrey", label=label)
    ax.set_title(title)
    ax.set_xlabel("round")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if series:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _plot_balances(path: Path, data: dict) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    msps = sorted(data["totals"])
    xs = [p["round"] for p in data["payouts"]]
    width = 0.8 / max(1, len(msps))
    for i, m in enumerate(msps):
        at = [x + (i - (len(msps) - 1) / 2) * width for x in xs]
        ax.bar(at, [p["rewards"].get(m, 0) for p in data["payouts"]], width=width, color=f"C{i}", label=f"{m} reward")
        slashes = [-p["slashed"].get(m, 0) for p in data["payouts"]]
        if any(slashes):
            ax.bar(at, slashes, width=width, color=f"C{i}", hatch="//", alpha=0.5, label=f"{m} stake slashed")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("rewards (balance) and slashes (stake) per round")
    ax.set_xlabel("round")
    ax.grid(alpha=0.3, axis="y")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if msps and xs:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _baseline_lines(baseline: Mapping[str, Any], kind: str) -> list[tuple[str, float]]:
    out = []
    for k, v in sorted(baseline.items()):
        name, val = scale_metric(k, v)
        if val is not None and metric_kind(name) == kind:
            out.append((f"{name.replace('_', ' ')} (test set): {val:.4g}", float(val)))
    return out


# ---- HTML
def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _code(x: Any, n: int = 16) -> str:
    return f"<code title='{_e(x)}'>{_e(short(x, n) if isinstance(x, str) else x)}</code>" if x else "-"


def _table(headers: list[str], rows: Iterable[Iterable[Any]], raw: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _ts(t: Any) -> str:
    if not isinstance(t, int):
        return "-"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}code{font-size:.9em}.ok{color:#17713a;font-weight:bold}.bad{color:#b3261e;font-weight:bold}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.85em}img{max-width:100%}.muted{color:#777}
"""


def render_html(data: dict, images: Mapping[str, Path]) -> str:
    """The report page; ``images`` (``accuracy``, ``loss``, ``payouts``) are embedded as base64 PNGs."""
    s = data["summary"]
    job_id = data["job_id"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>fedfabric audit — job {_e(job_id)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Audit report — job <code>{_e(job_id)}</code></h1>",
             f"<p class='muted'>Generated {_e(data['generated_at'])} from the ledger "
             f"(format {_e(data['format'])}). Every number below is read from the ledger.</p>"]
    verdict = ("<span class='ok'>intact</span>: every version links to its parent by hash, back to version 0"
               if s["lineage_ok"] else f"<span class='bad'>BROKEN</span>: {_e(s['lineage_error'])}")
    parts.append(_table(["job", job_id], [
        ["status", _e(s["status"])], ["rounds (planned / finalized / failed)",
                                      f"{_e(s['rounds_planned'])} / {_e(s['rounds_finalized'])} / {_e(s['rounds_failed'])}"],
        ["latest version", _e(s["latest_version"])], ["created by", f"{_e(s['created_by'])} at {_e(_ts(s['created_at']))}"],
        ["create transaction", _code(s["create_tx"], 24)], ["lineage", verdict],
        ["aliases", _e(", ".join(f"{k} → {v}" for k, v in sorted(data["aliases"].items())) or "-")],
    ], raw=True))
    if data["baseline"]:
        parts.append("<h2>Baseline</h2>" + _table(["measure", "value"],
                                                   [[k, _fmt(v)] for k, v in sorted(data["baseline"].items())]))

    parts.append("<h2>Model quality per round</h2><p class='muted'>From the approval votes recorded in each finalized "
                 "version: every org evaluates the candidate on its own validation data. Lines are the stake-weighted "
                 "mean across orgs, dots each org's value.</p>")
    for key in ("accuracy", "loss"):
        if key in images:
            b64 = base64.b64encode(images[key].read_bytes()).decode()
            parts.append(f"<p><img alt='{key} per round' src='data:image/png;base64,{b64}'></p>")
    names = sorted({n for c in data["curves"] for n in c["metrics"] if metric_kind(n) != "other"},
                   key=lambda n: (metric_kind(n), n))
    if names:
        parts.append(_table(["round", "version", *[f"{n} (weighted)" for n in names]],
                            [[c["round"], c["version"], *[_fmt(c["metrics"].get(n, {}).get("weighted")) for n in names]]
                             for c in data["curves"]]))
    else:
        parts.append("<p>No finalized version carries metrics yet.</p>")

    parts.append("<h2>Rounds</h2>")
    parts.append(_table(["round", "state", "leader", "participants", "submitted", "left out", "version",
                         "approving stake / total", "quorum", "reason"], [
        [r["round"], r["state"], r["leader"], sum(1 for p in r["participants"] if p["participant"]),
         sum(1 for p in r["participants"] if p["submitted"]), ", ".join(_absent(r)) or "-",
         _fmt(r["version"]), _approval(r), "/".join(map(str, r["quorum"] or [])) or "-", r["reason"] or "-"]
        for r in data["rounds"]]))
    parts.extend(_round_html(r) for r in data["rounds"])

    parts.append("<h2>Rewards, slashes and balances</h2>")
    if "payouts" in images:
        b64 = base64.b64encode(images["payouts"].read_bytes()).decode()
        parts.append(f"<p><img alt='rewards and slashes' src='data:image/png;base64,{b64}'></p>")
    msps = sorted(data["totals"])
    parts.append(_table(["round", "state", *[f"{m} reward" for m in msps], *[f"{m} slashed" for m in msps]], [
        [p["round"], p["state"], *[p["rewards"].get(m, 0) for m in msps], *[p["slashed"].get(m, 0) for m in msps]]
        for p in data["payouts"]]))
    parts.append("<p>Balances and stake now (all jobs):</p>")
    parts.append(_table(["org", "name", "status", "stake", "balance", "rewards in this job", "slashed in this job"], [
        [o["msp_id"], o["name"], o["status"], o["stake"], o["balance"], data["totals"].get(o["msp_id"], {}).get("rewards", 0),
         data["totals"].get(o["msp_id"], {}).get("slashed", 0)] for o in data["orgs"]]))

    dp = data["spec"].get("dp") or {}
    if dp.get("enabled"):
        budget = dp.get("epsilon_budget_milli", 0) / 1000
        parts.append(f"<h2>Differential privacy</h2><p class='muted'>Clipping at {dp.get('clip_norm_milli', 0) / 1000:g}, "
                     f"noise multiplier {dp.get('noise_multiplier_milli', 0) / 1000:g}, δ = 1e-{dp.get('delta_exp')}; "
                     f"budget ε = {budget:g}. ε accounted by the orgs (RDP accountant) and recorded per version.</p>")
        parts.append(_table(["version", "round", "ε spent so far", "within budget"], [
            [v["version"], v["round"], f"{(v.get('dp_epsilon_total_milli') or 0) / 1000:.3f}",
             "yes" if (v.get("dp_epsilon_total_milli") or 0) / 1000 <= budget else "NO"]
            for v in data["versions"] if v["version"]]))

    parts.append("<h2>Lineage</h2>")
    if not s["lineage_ok"]:
        parts.append(f"<p class='bad'>{_e(s['lineage_error'])}</p>")
    parts.append(_table(["version", "round", "status", "model hash", "parent hash", "aggregate", "approving stake",
                         "transaction", "block", "artifact"], [
        [_e(x["version"]), _e(x["round"]), _e(x["status"]), _code(x["model_hash"]), _code(x["parent_hash"]),
         _code(x["aggregate_hash"]), _e(f"{x['approved_stake']} / {x['total_stake']}" if x["parents"] else "-"),
         _code(x["tx_id"], 16), _e(_fmt(x["block"])), _e(x.get("artifact", "-"))] for x in data["lineage"]], raw=True))

    parts.append("<h2>Job specification</h2>")
    parts.append(f"<pre>{_e(json.dumps(data['spec'], indent=2, sort_keys=True))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _approval(r: dict) -> str:
    t = r.get("tally") or {}
    if not t:
        return "-"
    best = max((t.get("approve_by_result") or {}).values(), default=0)
    return f"{best} / {t.get('total_stake', '-')}"


def _absent(r: dict) -> list[str]:
    """Participants whose update is not in the round's aggregate (a failed round has no aggregate: those
    that did not submit)."""
    if r["version"] is None:
        return [p["msp_id"] for p in r["participants"] if p["participant"] and not p["submitted"]]
    return list(r["left_out"])


def _round_html(r: dict) -> str:
    """One round's section: contributors to its aggregate, every org's records, the transaction timeline."""
    parts = [f"<h3>Round {r['round']} — {_e(r['state'])}</h3>"]
    if r["contributors"]:
        agg = r["aggregate"] or {}
        how = "recomputed by the endorsers" if agg.get("recomputed") else "hash quorum of the voters' own results"
        parts.append(f"<p>Contributors to the aggregate {_code(r['aggregate_hash'])} ({_e((agg.get('rule') or {}).get('rule'))}, "
                     f"{_e(r['privacy'])}, {_e(how)}; finalized by {_e(r['closed_by'])}):</p>")
        parts.append(_table(["org", "samples", "update hash", "flagged"], [
            [_e(c["msp_id"]), _e(c.get("sample_count")), _code(c.get("update_hash")),
             "yes" if c["msp_id"] in r["flagged"] else "no"] for c in r["contributors"]], raw=True))
    parts.append(_table(["org", "stake", "participant", "submitted", "samples", "seeds revealed for", "vote",
                         "voted for", "vote metrics", "reward", "slashed"], [
        [_e(p["msp_id"]), _e(p["stake"]), "yes" if p["participant"] else "no",
         "yes" if p["submitted"] else ("left out" if p["left_out"] else "no"), _e(_fmt(p["sample_count"])),
         _e(", ".join(p["revealed_for"]) or "-"), _e(p["vote"] or "-"), _code(p["vote_model_hash"]),
         _e(", ".join(f"{n}={_fmt(v)}" for n, v in (scale_metric(k, x) for k, x in sorted(p["vote_metrics"].items())))
            or "-"),
         _e(p["reward"]), _e(p["slashed"])]
        for p in r["participants"]], raw=True))
    parts.append(_table(["step", "org", "time (UTC)", "transaction", "block"], [
        [_e(t["step"]), _e(t["msp_id"] or "-"), _e(_ts(t["time"])), _code(t["tx_id"], 16), _e(_fmt(t["block"]))]
        for t in r["timeline"]], raw=True))
    return "\n".join(parts)


def report(client: Any, job_id: str, out_dir: Path | str, store: ArtifactStore | None = None,
           baseline: Mapping[str, Any] | None = None) -> ReportFiles:
    """Write ``report.html`` (self-contained, plots embedded), ``report.json`` and the PNGs into ``out_dir``.

    Contents: job summary and lineage verdict; per-round accuracy and loss (the votes' metrics,
    ``*_milli``/``*_micro`` scaled, stake-weighted across orgs; ``baseline`` values such as
    ``centralized_accuracy`` drawn as reference lines); each round's contributors (org, sample count,
    update hash), votes and stake; rewards and slashes per round and the orgs' balances; the lineage
    with transaction ids, blocks and (with ``store``) whether each version's parameters are in the
    store and hash right; the job spec. A broken lineage does not stop the report: it is shown as
    such (``summary.lineage_ok`` false in the JSON). Unknown job: :class:`BadInput`.
    """
    out = Path(out_dir)
    data = collect(client, job_id, store, baseline)
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}
    for kind, ylabel in (("accuracy", "accuracy"), ("loss", "loss")):
        series = _series(data["curves"], kind)
        lines = _baseline_lines(data["baseline"], kind)
        if series or lines:
            images[kind] = _plot(out / f"{kind}.png", f"{kind} per round — job {job_id}", ylabel, series, lines)
    if data["payouts"]:
        images["payouts"] = _plot_balances(out / "payouts.png", data)
    data["images"] = {k: p.name for k, p in images.items()}
    json_path = out / "report.json"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    html_path = out / "report.html"
    html_path.write_text(render_html(data, images))
    return ReportFiles(html=html_path, json=json_path, images=list(images.values()), data=data)
