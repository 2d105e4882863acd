"""Model versions: the lineage written when rounds finalize, aliases, tags, lineage walks, comparison."""
from __future__ import annotations

import re

from fabshim.contract import Context

from fedfabric_protocol.errors import show
from fedfabric_protocol.fields import ident, matches

from . import jobs, roles, state
from .state import fail

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
VERSION_RE = re.compile(r"^[0-9]{1,6}$")
TAG_RE = re.compile(r"^[A-Za-z0-9._/-]{1,64}$")
AUTO_ALIASES = ("latest",)


def version_key(ctx: Context, job_id: str, v: int) -> str:
    return state.key(ctx, state.VERSION, ident(job_id, "job_id"), state.rnd(v))


def load_version(ctx: Context, job_id: str, v: int) -> dict:
    return state.must_get(ctx, version_key(ctx, job_id, v), f"version {show(v, 20)} of job {job_id}")


def resolve(ctx: Context, job_id: str, ref: str) -> int:
    """A version number from ``"3"`` or an alias such as ``"latest"``."""
    ident(job_id, "job_id")
    if matches(VERSION_RE, ref):
        return int(ref)
    a = state.get(ctx, state.key(ctx, state.ALIAS, job_id, ref)) if matches(ALIAS_RE, ref) else None
    if a is None:
        raise fail(f"job {job_id} has no version or alias {show(ref, 64)}", 404)
    return a["version"]


def get_version(ctx: Context, job_id: str, ref: str) -> dict:
    roles.require_reader(ctx)
    return load_version(ctx, job_id, resolve(ctx, job_id, ref))


def list_versions(ctx: Context, job_id: str) -> list:
    roles.require_reader(ctx)
    jobs.load(ctx, job_id)
    return [v for _, v in state.scan(ctx, state.VERSION, job_id)]


def set_alias(ctx: Context, job_id: str, alias: str, version: int) -> dict:
    roles.require_writer(ctx, "set_alias")
    if not matches(ALIAS_RE, alias):
        raise fail(f"alias must match {ALIAS_RE.pattern}")
    if alias in AUTO_ALIASES or alias.isdigit():
        raise fail(f"alias '{alias}' is managed by the ledger")
    v = load_version(ctx, job_id, version)
    if v["status"] not in ("finalized", "initial"):
        raise fail(f"version {version} is {v['status']}; only finalized versions get aliases")
    out = {"version": version, "set_at": state.now(ctx), "tx_id": ctx.stub.tx_id}
    state.put(ctx, state.key(ctx, state.ALIAS, job_id, alias), out)
    state.emit(ctx, "AliasSet", {"job_id": job_id, "alias": alias, "version": version})
    return out


def list_aliases(ctx: Context, job_id: str) -> dict:
    roles.require_reader(ctx)
    ident(job_id, "job_id")
    return {attrs[-1]: a["version"] for attrs, a in state.scan(ctx, state.ALIAS, job_id)}


def set_tag(ctx: Context, job_id: str, version: int, tag: str, value: str) -> dict:
    roles.require_writer(ctx, "set_tag")
    if not matches(TAG_RE, tag):
        raise fail(f"tag must match {TAG_RE.pattern}")
    if not isinstance(value, str) or len(value) > 256:
        raise fail("tag value must be a string of at most 256 characters")
    v = load_version(ctx, job_id, version)
    v = {**v, "tags": {**v["tags"], tag: value}}
    state.put(ctx, version_key(ctx, job_id, version), v)
    state.emit(ctx, "TagSet", {"job_id": job_id, "version": version, "tag": tag})
    return v


def lineage(ctx: Context, job_id: str, ref: str) -> list:
    """Versions from ``ref`` back to version 0, newest first."""
    roles.require_reader(ctx)
    v = load_version(ctx, job_id, resolve(ctx, job_id, ref))
    chain = [v]
    while v["parents"]:
        v = load_version(ctx, job_id, v["parents"][0])
        chain.append(v)
    return [{k: x[k] for k in ("version", "round", "model_hash", "parents", "status")} |
            {"aggregate_hash": x.get("aggregate_hash"), "finalize_tx": x["tx_ids"].get("finalize", x["tx_ids"].get("create"))}
            for x in chain]


def compare_versions(ctx: Context, job_id: str, a: str, b: str) -> dict:
    roles.require_reader(ctx)
    va = load_version(ctx, job_id, resolve(ctx, job_id, a))
    vb = load_version(ctx, job_id, resolve(ctx, job_id, b))
    lo, hi = (va, vb) if va["version"] <= vb["version"] else (vb, va)
    cur, ancestor = hi, False
    while True:
        if cur["version"] == lo["version"]:
            ancestor = True
            break
        if not cur["parents"]:
            break
        cur = load_version(ctx, job_id, cur["parents"][0])
    keys = sorted(set(va["metrics"]) | set(vb["metrics"]))
    ca = {c["msp_id"]: c["sample_count"] for c in va["contributors"]}
    cb = {c["msp_id"]: c["sample_count"] for c in vb["contributors"]}
    return {"a": va["version"], "b": vb["version"], "same_model": va["model_hash"] == vb["model_hash"],
            "model_hash": [va["model_hash"], vb["model_hash"]], "rounds": [va["round"], vb["round"]],
            "lineage_related": ancestor, "rule": [va.get("rule"), vb.get("rule")],
            "dp_epsilon_total_milli": [va.get("dp_epsilon_total_milli", 0), vb.get("dp_epsilon_total_milli", 0)],
            "metrics": {m: [va["metrics"].get(m), vb["metrics"].get(m)] for m in keys},
            "contributors": {m: [ca.get(m), cb.get(m)] for m in sorted(set(ca) | set(cb))}}
