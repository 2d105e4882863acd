"""FedFabricContract: the consortium's transactions (thin wrappers over the logic modules)."""
from __future__ import annotations

from fabshim.contract import Context, Contract, transaction

from . import aggregator, audit, expiry, jobs, members, models, roles, rounds, updates


class FedFabricContract(Contract):
    name = "fedfabric"

    # ---- members and stake
    @transaction
    def init_consortium(self, ctx: Context, orgs: list, quorum: str) -> dict:
        return members.init_consortium(ctx, orgs, quorum)

    @transaction
    def transfer_stake(self, ctx: Context, to_msp: str, amount: int) -> dict:
        return members.transfer_stake(ctx, to_msp, amount)

    @transaction
    def propose_stake_adjustment(self, ctx: Context, proposal_id: str, msp_id: str, delta: int, reason: str) -> dict:
        return members.propose_stake_adjustment(ctx, proposal_id, msp_id, delta, reason)

    @transaction
    def approve_stake_adjustment(self, ctx: Context, proposal_id: str) -> dict:
        return members.approve_stake_adjustment(ctx, proposal_id)

    @transaction
    def propose_status_change(self, ctx: Context, proposal_id: str, msp_id: str, status: str, reason: str) -> dict:
        return members.propose_status_change(ctx, proposal_id, msp_id, status, reason)

    @transaction
    def approve_status_change(self, ctx: Context, proposal_id: str) -> dict:
        return members.approve_status_change(ctx, proposal_id)

    @transaction(evaluate=True)
    def get_org(self, ctx: Context, msp_id: str) -> dict:
        return members.get_org(ctx, msp_id)

    @transaction(evaluate=True)
    def list_orgs(self, ctx: Context) -> list:
        return members.list_orgs(ctx)

    @transaction(evaluate=True)
    def org_history(self, ctx: Context, msp_id: str) -> list:
        return members.org_history(ctx, msp_id)

    @transaction(evaluate=True)
    def get_policy(self, ctx: Context) -> dict:
        return members.get_policy(ctx)

    # ---- jobs and rounds
    @transaction
    def create_job(self, ctx: Context, spec: dict) -> dict:
        return jobs.create_job(ctx, spec)

    @transaction(evaluate=True)
    def get_job(self, ctx: Context, job_id: str) -> dict:
        return jobs.get_job(ctx, job_id)

    @transaction(evaluate=True)
    def list_jobs(self, ctx: Context, page_size: int, bookmark: str) -> dict:
        return jobs.list_jobs(ctx, page_size, bookmark)

    @transaction
    def open_round(self, ctx: Context, job_id: str) -> dict:
        return rounds.open_round(ctx, job_id)

    @transaction
    def start_registration(self, ctx: Context, job_id: str, round: int) -> dict:
        return rounds.start_registration(ctx, job_id, round)

    @transaction
    def register(self, ctx: Context, job_id: str, round: int, public_key: str) -> dict:
        return rounds.register(ctx, job_id, round, public_key)

    @transaction
    def close_registration(self, ctx: Context, job_id: str, round: int) -> dict:
        return rounds.close_registration(ctx, job_id, round)

    @transaction
    def expire_round(self, ctx: Context, job_id: str, round: int) -> dict:
        return expiry.expire_round(ctx, job_id, round)

    @transaction(evaluate=True)
    def get_round(self, ctx: Context, job_id: str, round: int) -> dict:
        roles.require_reader(ctx)
        return rounds.load(ctx, job_id, round)

    @transaction(evaluate=True)
    def list_rounds(self, ctx: Context, job_id: str) -> list:
        return audit.job_rounds(ctx, job_id)

    # ---- updates and aggregation
    @transaction
    def submit_update(self, ctx: Context, job_id: str, round: int, meta: dict) -> dict:
        return updates.submit_update(ctx, job_id, round, meta)

    @transaction
    def reveal_seeds(self, ctx: Context, job_id: str, round: int) -> dict:
        return updates.reveal_seeds(ctx, job_id, round)

    @transaction
    def aggregate(self, ctx: Context, job_id: str, round: int) -> dict:
        return aggregator.aggregate_round(ctx, job_id, round)

    @transaction(evaluate=True)
    def get_aggregate(self, ctx: Context, job_id: str, round: int) -> dict:
        return aggregator.get_aggregate(ctx, job_id, round)

    # ---- approval and versions
    @transaction
    def vote(self, ctx: Context, job_id: str, round: int, ballot: dict) -> dict:
        return models.vote(ctx, job_id, round, ballot)

    @transaction
    def finalize_round(self, ctx: Context, job_id: str, round: int) -> dict:
        return models.finalize_round(ctx, job_id, round)

    @transaction(evaluate=True)
    def get_version(self, ctx: Context, job_id: str, ref: str) -> dict:
        return models.get_version(ctx, job_id, ref)

    @transaction(evaluate=True)
    def list_versions(self, ctx: Context, job_id: str) -> list:
        return models.list_versions(ctx, job_id)

    @transaction
    def set_alias(self, ctx: Context, job_id: str, alias: str, version: int) -> dict:
        return models.set_alias(ctx, job_id, alias, version)

    @transaction(evaluate=True)
    def list_aliases(self, ctx: Context, job_id: str) -> dict:
        return models.list_aliases(ctx, job_id)

    @transaction
    def set_tag(self, ctx: Context, job_id: str, version: int, tag: str, value: str) -> dict:
        return models.set_tag(ctx, job_id, version, tag, value)

    @transaction(evaluate=True)
    def lineage(self, ctx: Context, job_id: str, ref: str) -> list:
        return models.lineage(ctx, job_id, ref)

    @transaction(evaluate=True)
    def compare_versions(self, ctx: Context, job_id: str, a: str, b: str) -> dict:
        return models.compare_versions(ctx, job_id, a, b)

    # ---- audit
    @transaction(evaluate=True)
    def round_report(self, ctx: Context, job_id: str, round: int) -> dict:
        return audit.round_report(ctx, job_id, round)

    @transaction(evaluate=True)
    def org_report(self, ctx: Context, msp_id: str) -> dict:
        return audit.org_report(ctx, msp_id)

    @transaction(evaluate=True)
    def key_history(self, ctx: Context, object_type: str, attrs: list) -> list:
        return audit.key_history(ctx, object_type, attrs)
