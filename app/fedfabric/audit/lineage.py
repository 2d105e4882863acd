"""Walk a model's lineage from any version back to version 0, checking every link on the way."""
from __future__ import annotations

from typing import Any

from fedfabric_protocol.records import Result
from fedfabric_protocol.states import RoundState

from .common import ask, block_finder, short, versions_by_number
from .errors import AuditError

FINAL_STATUSES = ("finalized",)
ROOT_STATUS = "initial"


def version_result(version: dict) -> Result:
    """The result a finalized version claims the quorum voted for: its aggregate hash, model hash,
    contributors and flagged updates, and with a server optimizer the step and state hashes (what a
    ballot's ``result_key`` hashes)."""
    contributors = tuple(sorted(c["msp_id"] for c in version.get("contributors", [])))
    opt = version.get("optimizer") or {}
    return Result(version.get("aggregate_hash") or "", version["model_hash"], contributors,
                  tuple(sorted(version.get("flagged") or ())), opt.get("step_hash") or "", opt.get("state_hash") or "")


def approved_stake(version: dict) -> tuple[int, int, list[int]]:
    """(stake whose ballots approved exactly this version's result, total stake of its round, quorum [num, den]).

    A ballot counts when it approves and its ``result_key`` is the key of :func:`version_result`, so a
    version whose model hash, aggregate hash, contributors or flagged list was changed after the vote
    is approved by nobody.
    """
    tally = version.get("tally") or {}
    total = int(tally.get("total_stake", 0))
    quorum = list(tally.get("quorum") or [0, 1])
    key = version_result(version).key
    ok = sum(int(a.get("stake", 0)) for a in version.get("approvals", [])
             if a.get("approve") and a.get("result_key") == key)
    return ok, total, quorum


def _entry(v: dict, block_of: Any) -> dict:
    txs = v.get("tx_ids") or {}
    tx = txs.get("finalize") or txs.get("create")
    ok, total, quorum = approved_stake(v) if v.get("parents") else (0, 0, [0, 1])
    return {"version": int(v["version"]), "round": int(v.get("round", 0)), "status": v.get("status"),
            "model_hash": v["model_hash"], "parent_hash": v.get("parent_hash"), "parents": list(v.get("parents", [])),
            "aggregate_hash": v.get("aggregate_hash"), "rule": (v.get("rule") or {}).get("rule"),
            "privacy": v.get("privacy"), "exchange": v.get("exchange"),
            "contributors": [{"msp_id": c["msp_id"], "sample_count": c.get("sample_count"),
                              "update_hash": c.get("update_hash"), "tx_id": c.get("tx_id")}
                             for c in v.get("contributors", [])],
            "flagged": list(v.get("flagged") or []), "optimizer": v.get("optimizer"),
            "approved_stake": ok, "total_stake": total, "quorum": quorum,
            "created_at": v.get("created_at"), "tx_id": tx, "block": block_of(tx) if tx else None}


def _check_root(job_id: str, cur: dict, initial_hash: str) -> None:
    n = int(cur["version"])
    if n != 0:
        raise AuditError(f"broken lineage in job {job_id}: version {n} has no parent but is not version 0")
    if cur.get("status") != ROOT_STATUS:
        raise AuditError(f"version 0 of job {job_id} has status {cur.get('status')!r}, expected {ROOT_STATUS!r}")
    if cur["model_hash"] != initial_hash:
        raise AuditError(f"broken lineage in job {job_id}: version 0 has model hash {short(cur['model_hash'])}, "
                         f"but the job spec's initial_hash is {short(initial_hash)}")


def _check_link(job_id: str, cur: dict, known: dict[int, dict], rounds: dict[int, dict]) -> dict:
    """The parent of ``cur`` once every check of the link holds."""
    n, p = int(cur["version"]), int(cur["parents"][0])
    if p != n - 1:
        raise AuditError(f"broken lineage in job {job_id}: version {n} names version {p} as its parent, "
                         f"expected version {n - 1}")
    if cur.get("status") not in FINAL_STATUSES:
        raise AuditError(f"version {n} of job {job_id} is {cur.get('status')!r}, not finalized")
    ok, total, (num, den) = approved_stake(cur)
    if total <= 0 or ok * den < num * total:
        raise AuditError(f"version {n} of job {job_id} is recorded as finalized, but only {ok} of {total} stake "
                         f"approved its result (model hash {short(cur['model_hash'])}, quorum {num}/{den})")
    rd = rounds.get(int(cur.get("round", -1)))
    if rounds and (rd is None or RoundState(rd["state"]) is not RoundState.FINALIZED or rd.get("version") != n):
        got = "missing" if rd is None else f"{RoundState(rd['state']).value} with version {rd.get('version')}"
        raise AuditError(f"version {n} of job {job_id} says it came from round {cur.get('round')}, "
                         f"but that round is {got}")
    parent = known.get(p)
    if parent is None:
        raise AuditError(f"broken lineage in job {job_id}: version {n}'s parent, version {p}, is not on the ledger")
    if cur.get("parent_hash") != parent["model_hash"]:
        raise AuditError(f"broken lineage in job {job_id}: version {n} says its parent (version {p}) has model "
                         f"hash {short(cur.get('parent_hash'))}, but version {p} records "
                         f"{short(parent['model_hash'])}")
    mine, theirs = cur.get("optimizer"), parent.get("optimizer")
    if (mine is None) != (theirs is None) or (mine and mine.get("parent_state_hash") != theirs.get("state_hash")):
        raise AuditError(f"broken lineage in job {job_id}: version {n} says it stepped from optimizer state "
                         f"{short((mine or {}).get('parent_state_hash'))}, but version {p} records "
                         f"{short((theirs or {}).get('state_hash'))}")
    return parent


def lineage(client: Any, job_id: str, ref: str | int = "latest", *, blocks: bool = True) -> list[dict]:
    """The versions from ``ref`` (number or alias) back to version 0, newest first, every link checked.

    Checked for each version ``v`` > 0: its parent is ``v-1`` and is on the ledger; its
    ``parent_hash`` equals the parent's ``model_hash`` (and, with a server optimizer, its
    ``optimizer.parent_state_hash`` the parent's ``optimizer.state_hash``); it is ``finalized``; the stake whose ballots
    approved exactly its result (aggregate hash, model hash, contributors, flagged) reached the
    round's quorum; its round is recorded as finalized into ``v``. For version 0: it has no parent,
    is the job's ``initial`` version and its hash is the job spec's ``model.initial_hash``. Any
    failure raises :class:`AuditError` naming the versions and the hashes that disagree; an unknown
    job or ref raises :class:`BadInput`.

    Each entry: version, round, status, model_hash, parent_hash, parents, aggregate_hash, rule (its
    name), privacy, exchange, contributors (msp_id, sample_count, update_hash, tx_id), flagged,
    optimizer (kind, coefficients, step_hash, state_hash, parent_state_hash; None without one),
    approved_stake, total_stake, quorum, created_at, tx_id (finalize or create transaction) and block
    (``None`` when the client cannot look blocks up).
    """
    job = ask(client.get_job, job_id)
    head = ask(client.get_version, job_id, str(ref))
    known = versions_by_number(ask(client.list_versions, job_id))
    rounds = {}
    if callable(getattr(client, "list_rounds", None)):
        rounds = {int(r["round"]): r for r in ask(client.list_rounds, job_id)}
    find_block = block_finder(client) if blocks else (lambda tx: None)
    initial_hash = job["spec"]["model"]["initial_hash"]

    chain: list[dict] = []
    cur = head
    seen: set[int] = set()
    while True:
        n = int(cur["version"])
        if n in seen:
            raise AuditError(f"lineage of job {job_id} loops at version {n}")
        seen.add(n)
        chain.append(_entry(cur, find_block))
        if not cur.get("parents"):
            _check_root(job_id, cur, initial_hash)
            return chain
        cur = _check_link(job_id, cur, known, rounds)
