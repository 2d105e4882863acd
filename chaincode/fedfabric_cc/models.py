"""Approval voting, finalization into model versions, aliases, tags, lineage, comparison."""
from __future__ import annotations

import re
from typing import AbstractSet

from fabshim.contract import Context

from . import incentives, jobs, members, roles, rounds, spec as specmod, state, updates
from .state import fail

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
TAG_RE = re.compile(r"^[A-Za-z0-9._/-]{1,64}$")
AUTO_ALIASES = ("latest",)


def version_key(ctx: Context, job_id: str, v: int) -> str:
    return state.key(ctx, state.VERSION, job_id, state.rnd(v))


def load_version(ctx: Context, job_id: str, v: int) -> dict:
    return state.must_get(ctx, version_key(ctx, job_id, v), f"version {v} of job {job_id}")


def vote(ctx: Context, job_id: str, r: int, ballot: dict) -> dict:
    org, _ = roles.require_writer(ctx, "vote", rounds.PARTICIPANT_ROLES)
    msp = org["msp_id"]
    rec = rounds.load(ctx, job_id, r)
    rounds.expect(rec, rounds.AGGREGATED)
    t = state.now(ctx)
    if t > rec["deadlines"]["approval"]:
        raise fail(f"too late: the approval window of round {r} closed at {rec['deadlines']['approval']}", 409)
    if rec["stakes"].get(msp, 0) <= 0:
        raise fail(f"{msp} had no stake as a participant when round {r} opened and cannot vote", 403)
    vk = state.key(ctx, state.VOTE, job_id, state.rnd(r), msp)
    if state.get(ctx, vk) is not None:
        raise fail(f"duplicate: {msp} already voted in round {r} of job {job_id}", 409)
    if not isinstance(ballot, dict) or set(ballot) - {"approve", "model_hash", "metrics"}:
        raise fail("ballot must be an object with approve, model_hash and metrics")
    specmod.no_floats(ballot, "ballot")
    if not isinstance(ballot.get("approve"), bool):
        raise fail("ballot.approve must be true or false")
    model_hash = specmod.hex64(ballot, "model_hash", "ballot") if ballot["approve"] else ballot.get("model_hash")
    if model_hash is not None and not (isinstance(model_hash, str) and specmod.HEX64.match(model_hash)):
        raise fail("ballot.model_hash must be a lowercase hex SHA-256")
    metrics = updates._metrics(ballot.get("metrics", {}), "ballot.metrics")
    out = {"job_id": job_id, "round": r, "msp_id": msp, "approve": ballot["approve"], "model_hash": model_hash,
           "metrics": metrics, "stake": rec["stakes"][msp], "voted_at": t, "tx_id": ctx.stub.tx_id}
    state.put(ctx, vk, out)
    state.emit(ctx, "Voted", {"job_id": job_id, "round": r, "msp_id": msp, "approve": ballot["approve"],
                              "model_hash": model_hash})
    return out


def tally(rec: dict, votes: dict[str, dict], excluded: AbstractSet[str] = frozenset()) -> dict:
    """Stake-weighted tally over the round's stake snapshot, without the ``excluded`` (suspended) orgs."""
    num, den = rec["quorum"]
    stakes = {m: s for m, s in rec["stakes"].items() if m not in excluded}
    votes = {m: v for m, v in votes.items() if m in stakes}
    total = sum(stakes.values())
    by_hash: dict[str, int] = {}
    for v in votes.values():
        if v["approve"]:
            by_hash[v["model_hash"]] = by_hash.get(v["model_hash"], 0) + v["stake"]
    pending = sum(s for m, s in stakes.items() if m not in votes)
    winner = None
    for h, s in sorted(by_hash.items(), key=lambda kv: (-kv[1], kv[0])):
        if total > 0 and s * den >= num * total:
            winner = h
            break
    best = max(by_hash.values(), default=0)
    return {"total_stake": total, "approve_by_hash": by_hash, "pending_stake": pending, "winner": winner,
            "reachable": total > 0 and (best + pending) * den >= num * total, "quorum": [num, den],
            "excluded": sorted(set(rec["stakes"]) & set(excluded))}


def round_tally(ctx: Context, rec: dict, votes: dict[str, dict]) -> dict:
    """The tally of an aggregated round now: its ``votes`` (``state.by_org`` VOTE), suspended orgs left out."""
    suspended = {m for m, o in members.all_orgs(ctx).items() if o["status"] != members.ACTIVE}
    return tally(rec, votes, suspended)


def fail_vote(ctx: Context, job: dict, rec: dict, tl: dict) -> dict:
    """aggregated -> failed: the approval quorum was not (and can no longer be) reached; absent and
    anomalous orgs are slashed."""
    reason = "approval quorum not reached"
    if tl["reachable"]:
        reason += f" by the approval deadline {rec['deadlines']['approval']}"
    return rounds.fail_round(ctx, job, rec, reason, absent=rec["dropped"],
                             anomalous=rec["aggregate"].get("anomalous", []), tally=tl)


def finalize_round(ctx: Context, job_id: str, r: int) -> dict:
    roles.require_writer(ctx, "finalize_round", rounds.PARTICIPANT_ROLES)
    job = jobs.load(ctx, job_id)
    rec = rounds.load(ctx, job_id, r)
    rounds.expect(rec, rounds.AGGREGATED)
    votes = state.by_org(ctx, state.VOTE, job_id, r)
    tl = round_tally(ctx, rec, votes)
    t = state.now(ctx)
    closed = t > rec["deadlines"]["approval"]
    if tl["winner"] is None:
        if tl["reachable"] and not closed:
            raise fail(f"vote undecided: best approval {max(tl['approve_by_hash'].values(), default=0)} of "
                       f"{tl['total_stake']} stake, quorum {tl['quorum'][0]}/{tl['quorum'][1]}; "
                       f"window closes at {rec['deadlines']['approval']}", 409)
        return fail_vote(ctx, job, rec, tl)
    return _finalize(ctx, job, rec, votes, tl, t)


def _finalize(ctx: Context, job: dict, rec: dict, votes: dict[str, dict], tl: dict, t: int) -> dict:
    """aggregated -> finalized: version r+1 of the lineage, rewards and slashes, aliases, job counters."""
    job_id, r, a = job["job_id"], rec["round"], rec["aggregate"]
    parent = load_version(ctx, job_id, job["latest_version"])
    v = job["latest_version"] + 1
    update_txs = {m: u["tx_id"] for m, u in state.by_org(ctx, state.UPD, job_id, r).items()}
    eps_total = a.get("dp_epsilon_total_milli", parent.get("dp_epsilon_total_milli", 0) + a["dp_epsilon_milli"])
    version = {"job_id": job_id, "version": v, "round": r, "parents": [parent["version"]],
               "parent_hash": parent["model_hash"], "model_hash": tl["winner"], "aggregate_hash": a["aggregate_hash"],
               "status": "finalized", "rule": a["rule"], "privacy": rec["privacy"],
               "dp_epsilon_milli": a["dp_epsilon_milli"], "dp_epsilon_total_milli": eps_total,
               "dp_budget_exceeded": bool(job["spec"]["dp"]["enabled"]
                                          and eps_total > job["spec"]["dp"]["epsilon_budget_milli"]),
               "contributors": a["contributors"], "anomalous": a.get("anomalous", []),
               "metrics": {m: vt["metrics"] for m, vt in sorted(votes.items())},
               "approvals": [{"msp_id": m, "approve": vt["approve"], "model_hash": vt["model_hash"],
                              "stake": vt["stake"], "tx_id": vt["tx_id"]} for m, vt in sorted(votes.items())],
               "tally": tl, "tags": {}, "created_at": t,
               "tx_ids": {**rec["tx_ids"], "finalize": ctx.stub.tx_id, "updates": update_txs}}
    rec = rounds.advance(ctx, rec, rounds.FINALIZED, tally=tl, version=v)
    settled = incentives.settle(ctx, job, rec, incentives.reward_weights(rec), absent=rec["dropped"],
                                anomalous=a.get("anomalous", []))
    version["rewards"], version["slashed"] = settled["rewards"], settled["slashed"]
    ep = bytes.fromhex(settled["envelope_hex"]) if settled["envelope_hex"] else members.current_endorsement(ctx)
    vk = version_key(ctx, job_id, v)
    state.put(ctx, vk, version)
    ctx.stub.set_state_validation_parameter(vk, ep)
    state.put(ctx, rounds.round_key(ctx, job_id, r), rec)
    after = jobs.after_round(job, r, finalized=True, latest_version=v)
    state.put(ctx, jobs.job_key(ctx, job_id), after)
    state.put(ctx, state.key(ctx, state.ALIAS, job_id, "latest"), {"version": v, "set_at": t, "tx_id": ctx.stub.tx_id})
    jobs.emit_round_end(ctx, job, after, "RoundFinalized",
                        {"job_id": job_id, "round": r, "version": v, "model_hash": tl["winner"],
                         "rewards": settled["rewards"], "slashed": settled["slashed"], "policy": settled["policy"]})
    return version


# ---- versions, aliases, tags
def resolve(ctx: Context, job_id: str, ref: str) -> int:
    """A version number from ``"3"`` or an alias such as ``"latest"``."""
    if isinstance(ref, str) and ref.isdigit():
        return int(ref)
    a = state.get(ctx, state.key(ctx, state.ALIAS, job_id, ref))
    if a is None:
        raise fail(f"job {job_id} has no version or alias '{ref}'", 404)
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
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
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
    return {attrs[-1]: a["version"] for attrs, a in state.scan(ctx, state.ALIAS, job_id)}


def set_tag(ctx: Context, job_id: str, version: int, tag: str, value: str) -> dict:
    roles.require_writer(ctx, "set_tag")
    if not isinstance(tag, str) or not TAG_RE.match(tag):
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
