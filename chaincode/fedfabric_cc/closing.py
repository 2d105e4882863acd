"""Closing a round: the tally, the endorsed recomputation, the new version, rewards and slashes, and the
next round opened in the same transaction.

No model bytes are written: the aggregate and the new model live in the members' nodes (which serve
them by hash to a node catching up); the ledger keeps their hashes.

``finalize_round`` is the round's third ordered phase (after submissions and ballots). It is allowed
once every submitter voted, or once the vote window closed, or once seeds owed for dropped
participants are overdue; the protocol's ``deadlines`` decide. A result wins with the stake quorum
of identical ballots; where payloads travelled in the private collection the endorsers recompute
the aggregate and the round finalizes only if it matches the quorum's result bit for bit. Whatever
happens, the round closes (finalized or failed) and the next one opens: collecting at once with the
round keys its electorate registered in their ballots, else registering.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Optional

from fabshim.contract import Context
from fedfabric_protocol import deadlines
from fedfabric_protocol.deadlines import Activity
from fedfabric_protocol.records import Result, RoundRecord
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import Exchange, Privacy, RoundState
from fedfabric_protocol.tally import Tally, VoteWeight, tally

from . import incentives, jobs, members, recompute, roles, rounds, state, updates, versions
from .state import UPDATES_COLLECTION


def finalize_round(ctx: Context, job_id: str, r: int) -> dict:
    """Close round ``r``: finalize it into the next model version if a stake quorum approved one result
    (recomputed under endorsement where the payloads are on the peers), otherwise fail it; settle
    rewards and slashes; open round ``r + 1``."""
    job = jobs.load(ctx, job_id)
    spec = jobs.spec_of(job)
    msp = roles.require_participant(ctx, "finalize_round", list(spec.participants), job_id)["msp_id"]
    rec = rounds.load_current(ctx, job, r)
    upds = state.per_org(ctx, state.UPD, job_id, r, rec.participants)
    reveals = state.per_org(ctx, state.REVEAL, job_id, r, rec.participants) if rec.privacy is Privacy.SECURE else {}
    votes = state.per_org(ctx, state.VOTE, job_id, r, rec.electorate)
    act = Activity(submitted=frozenset(upds), reveals=updates.reveals_of(reveals), voted=frozenset(votes))
    t = state.now(ctx)
    deadlines.check_close(rec, act, t)
    closer = Closer(ctx, job, spec, rec, members.orgs_by_id(ctx, spec.participants), msp, t, upds, votes, reveals)
    absent = deadlines.dropped(rec, act)
    reason = deadlines.closing_reason(rec, act, t)
    if reason is not None:
        overdue = deadlines.missing_reveals(rec, act, set(upds)) if t > rec.deadlines.reveal_by else []
        return closer.failed(reason, absent, no_reveal=overdue)
    suspended = {m for m in rec.stakes if closer.orgs.get(m, {}).get("status") != members.ACTIVE}
    tl = tally(rec.stakes, rec.quorum, {m: VoteWeight(v["approve"], v.get("result_key")) for m, v in votes.items()},
               suspended)
    if deadlines.undecided(rec, tl, t):
        pending = sorted(set(rec.electorate) - set(votes) - set(tl.excluded))
        raise state.fail(f"vote undecided: the best result has {max(tl.approve_by_result.values(), default=0)} of "
                         f"{tl.total_stake} stake (quorum {tl.quorum[0]}/{tl.quorum[1]}); waiting for "
                         f"{', '.join(pending)} until {rec.deadlines.vote_by}", 409)
    if tl.winner is None:
        why = "approval quorum not reached" + (f" by the vote deadline {rec.deadlines.vote_by}"
                                                if tl.reachable else "")
        return closer.failed(why, absent, tl)
    winner = Result.from_dict(next(v for _, v in sorted(votes.items()) if v.get("result_key") == tl.winner))
    if rec.exchange is not Exchange.ENDORSED:
        return closer.finalized(winner, tl, False, {})
    opt_state = recompute.base_optimizer_state(ctx, spec, rec) if spec.server_optimizer else None
    agg, loo = recompute.endorsed_aggregate(ctx, spec, rec, winner.contributors, upds, reveals)
    if (agg.hash, agg.flagged) != (winner.aggregate_hash, winner.flagged):
        return closer.failed(f"the quorum's result (aggregate {winner.aggregate_hash[:16]}…, flagged "
                             f"{', '.join(winner.flagged) or 'none'}) differs from the endorsed recomputation "
                             f"(aggregate {agg.hash[:16]}…, flagged {', '.join(agg.flagged) or 'none'})", absent, tl)
    if spec.server_optimizer is not None:
        st = recompute.endorsed_step(spec, agg, opt_state)
        if (st.hash, st.state_hash) != (winner.step_hash, winner.state_hash):
            return closer.failed(f"the quorum's {spec.server_optimizer.name} step (step {winner.step_hash[:16]}…, "
                                 f"state {winner.state_hash[:16]}…) differs from the endorsed recomputation "
                                 f"(step {st.hash[:16]}…, state {st.state_hash[:16]}…)", absent, tl)
    details = {"distances": {m: str(d) for m, d in agg.distances.items()}, "loo": {m: str(d) for m, d in loo.items()}}
    return closer.finalized(winner, tl, True, details if rec.privacy is Privacy.CLEAR else {})


def fail_registration(ctx: Context, job: dict, spec: JobSpec, rec: RoundRecord, reason: str, t: int) -> dict:
    """A registering round that ended with too few round keys: it fails (nobody is slashed) and the next opens."""
    msp = ctx.client_identity.msp_id
    closer = Closer(ctx, job, spec, rec, members.orgs_by_id(ctx, spec.participants), msp, t, {}, {}, {})
    return closer.failed(reason, [])


class Closer:
    """Everything closing one round writes, for either outcome."""

    def __init__(self, ctx: Context, job: dict, spec: JobSpec, rec: RoundRecord, orgs: Mapping[str, dict],
                 msp: str, t: int, upds: Mapping[str, dict], votes: Mapping[str, dict],
                 reveals: Mapping[str, dict]) -> None:
        self.ctx, self.job, self.spec, self.rec, self.orgs = ctx, job, spec, rec, orgs
        self.msp, self.t, self.upds, self.votes, self.reveals = msp, t, upds, votes, reveals

    def failed(self, reason: str, absent: list[str], tl: Optional[Tally] = None, no_reveal: list[str] = ()) -> dict:
        settled = incentives.settle(self.ctx, self.spec.incentives, self.spec.job_id, self.rec.round, self.orgs,
                                    {}, absent, no_reveal=list(no_reveal))
        eps, spent = self._privacy_spend()
        outcome = self._outcome(reason, contributors=(), left_out=sorted(set(self.rec.participants) - set(self.upds)),
                                flagged=(), tl=tl, settled=settled, no_reveal=no_reveal,
                                dp_epsilon_milli=eps, dp_epsilon_total_milli=spent)
        return self._close(RoundState.FAILED, outcome, settled, version=None, dp_spent=spent)

    def _privacy_spend(self) -> tuple[int, int]:
        """(this round's ε, the job's total) in milli-units. Every participant can compute the aggregate once
        ``min_participants`` updates are in, so such a round spends privacy whether it finalizes or not:
        the largest ε any submitted update claims."""
        eps = 0
        if len(self.upds) >= self.rec.min_participants:
            eps = max(int(u.get("dp_epsilon_milli", 0)) for u in self.upds.values())
        return eps, self.job.get("dp_epsilon_spent_milli", 0) + eps

    def finalized(self, winner: Result, tl: Tally, recomputed: bool, details: dict) -> dict:
        spec, rec, job = self.spec, self.rec, self.job
        contributors, flagged = winner.contributors, winner.flagged
        good = [m for m in contributors if m not in flagged]
        weights = {m: int(self.upds[m]["sample_count"]) for m in good}
        loo = {m: int(v) for m, v in details.get("loo", {}).items() if m in good}
        if sum(loo.values()) > 0:
            weights = loo   # clear mode: paid by how much each update moves the aggregate
        absent = sorted(set(rec.participants) - set(contributors))
        settled = incentives.settle(self.ctx, spec.incentives, spec.job_id, rec.round, self.orgs, weights, absent,
                                    list(flagged))
        eps, spent = self._privacy_spend()
        v = job["latest_version"] + 1
        agg = {"aggregate_hash": winner.aggregate_hash, "size": spec.model.num_params * 4,
               "total_samples": sum(int(self.upds[m]["sample_count"]) for m in contributors),
               "rule": spec.aggregation.to_dict(), "recomputed": recomputed, "dp_epsilon_milli": eps,
               "dp_epsilon_total_milli": spent,
               "dp_budget_exceeded": bool(spec.dp.enabled and spent > spec.dp.epsilon_budget_milli), **details}
        parent = versions.load_version(self.ctx, spec.job_id, job["latest_version"])
        version = {"job_id": spec.job_id, "version": v, "round": rec.round, "parents": [parent["version"]],
                   "parent_hash": parent["model_hash"], "model_hash": winner.model_hash,
                   "aggregate_hash": winner.aggregate_hash, "status": "finalized", "rule": spec.aggregation.to_dict(),
                   "privacy": rec.privacy.value, "exchange": rec.exchange.value, "dp_epsilon_milli": eps,
                   "dp_epsilon_total_milli": spent, "dp_budget_exceeded": agg["dp_budget_exceeded"],
                   "contributors": [{"msp_id": m, "sample_count": self.upds[m]["sample_count"],
                                     "update_hash": self.upds[m]["sha256"], "tx_id": self.upds[m]["tx_id"]}
                                    for m in contributors],
                   "flagged": list(flagged), "metrics": {m: vt["metrics"] for m, vt in sorted(self.votes.items())},
                   "approvals": [{"msp_id": m, "approve": vt["approve"], "result_key": vt.get("result_key"),
                                  "model_hash": vt.get("model_hash"), "stake": vt["stake"], "tx_id": vt["tx_id"]}
                                 for m, vt in sorted(self.votes.items())],
                   "tally": tl.to_dict(), "tags": {}, "created_at": self.t,
                   **self._optimizer(winner),
                   "rewards": settled["rewards"], "slashed": settled["slashed"],
                   "tx_ids": {"opened": rec.opened_tx, "started": rec.started_tx, "finalize": self.ctx.stub.tx_id,
                              "updates": {m: u["tx_id"] for m, u in sorted(self.upds.items())},
                              "votes": {m: vt["tx_id"] for m, vt in sorted(self.votes.items())}}}
        outcome = self._outcome(None, contributors, absent, flagged, tl, settled, aggregate=agg, version=v,
                                model_hash=winner.model_hash)
        return self._close(RoundState.FINALIZED, outcome, settled, version=version, dp_spent=spent)

    def _optimizer(self, winner: Result) -> dict:
        """The version's server-optimizer record: its settings, the step taken and the state after it."""
        opt = self.spec.server_optimizer
        if opt is None:
            return {}
        return {"optimizer": {**opt.to_dict(), "step_hash": winner.step_hash, "state_hash": winner.state_hash,
                              "parent_state_hash": self.rec.base_state_hash}}

    def _outcome(self, reason: Optional[str], contributors, left_out, flagged, tl: Optional[Tally], settled: dict,
                 no_reveal=(), **extra) -> dict:
        """``left_out``: participants whose update is not in the result (finalized), or that sent none (failed)."""
        return {"closed_at": self.t, "closed_tx": self.ctx.stub.tx_id, "closed_by": self.msp, "reason": reason,
                "submitted": sorted(self.upds), "voted": sorted(self.votes), "contributors": list(contributors),
                "left_out": list(left_out), "flagged": list(flagged),
                "no_reveal": list(no_reveal), "tally": tl.to_dict() if tl else None,
                "settlement": {k: settled[k] for k in ("rewards", "slashed", "owed", "slash_deferred")},
                "version": None, "model_hash": None, "aggregate": None, **extra}

    def _close(self, to: RoundState, outcome: dict, settled: dict, version: Optional[dict],
               dp_spent: Optional[int] = None) -> dict:
        ctx, spec, rec, job = self.ctx, self.spec, self.rec, self.job
        ep = settled["envelope"] or members.current_endorsement(ctx)
        closed = replace(rec, state=to, outcome=outcome)
        changes = {} if dp_spent is None else {"dp_epsilon_spent_milli": dp_spent}
        if version is not None:
            changes["latest_version"] = version["version"]
        after = jobs.after_round(job, rec.round, version is not None, **changes)
        nxt = None
        if after["status"] == jobs.ACTIVE:
            base = version or versions.load_version(ctx, spec.job_id, job["latest_version"])
            registered = state.per_org(ctx, state.REG, spec.job_id, rec.round + 1, spec.participants)
            nxt = rounds.open_round(ctx, spec, rec.round + 1, base, settled["orgs"], registered, self.t)
            rounds.save(ctx, nxt, ep)
        rounds.save(ctx, closed, ep)
        state.put(ctx, jobs.job_key(ctx, spec.job_id), after)
        ctx.stub.set_state_validation_parameter(jobs.job_key(ctx, spec.job_id), ep)
        if version is not None:
            vk = versions.version_key(ctx, spec.job_id, version["version"])
            state.put(ctx, vk, version)
            ctx.stub.set_state_validation_parameter(vk, ep)
            state.put(ctx, state.key(ctx, state.ALIAS, spec.job_id, "latest"),
                      {"version": version["version"], "set_at": self.t, "tx_id": ctx.stub.tx_id})
        self._purge()
        name = "RoundFinalized" if to is RoundState.FINALIZED else "RoundFailed"
        body = {"job_id": spec.job_id, "round": rec.round, "state": to.value, "version": outcome["version"],
                "model_hash": outcome["model_hash"], "reason": outcome["reason"],
                "rewards": settled["rewards"], "slashed": settled["slashed"], "owed": settled["owed"],
                "policy": settled["policy"],
                "next": nxt.to_dict() if nxt else None}
        if after["status"] == jobs.COMPLETED:
            state.emit(ctx, "JobCompleted", {**body, "round_event": name, "status": jobs.COMPLETED,
                                             "rounds_finalized": after["rounds_finalized"],
                                             "rounds_failed": after["rounds_failed"],
                                             "latest_version": after["latest_version"],
                                             "dp_epsilon_spent_milli": after.get("dp_epsilon_spent_milli", 0)})
        else:
            state.emit(ctx, name, body)
        return closed.to_dict()

    def _purge(self) -> None:
        """The round's update payloads and revealed seeds leave every peer's private store (hashes stay)."""
        ctx, job_id, r = self.ctx, self.spec.job_id, self.rec.round
        if self.rec.exchange is Exchange.ENDORSED:
            for m in sorted(self.upds):
                ctx.stub.purge_private_data(UPDATES_COLLECTION, updates.upd_key(ctx, job_id, r, m))
        for s, rev in sorted(self.reveals.items()):
            for d in rev["left_out"]:
                ctx.stub.purge_private_data(UPDATES_COLLECTION, updates.seed_key(ctx, job_id, r, s, d))
