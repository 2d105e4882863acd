"""FedFabricContract: the consortium's transactions (each a thin wrapper over the module that owns it).

Round protocol (three ordered phases per round): ``submit_update`` by every participant, ``vote``
by every org (carrying its key for the next round), ``finalize_round`` by the leader (first) or
anyone (later), which also opens the next round. ``register`` / ``start_round`` only for round 1,
for rounds opened registering, and for orgs rejoining; ``reveal_seeds`` only when someone dropped.
"""
from __future__ import annotations

from fabshim.contract import Context, Contract, transaction
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.fields import ident

from . import audit, closing, jobs, members, membership, registration, roles, rounds, updates, versions, votes
from .clock import SkewGate


class FedFabricContract(Contract):
    name = "fedfabric"
    error_types = (ProtocolError,)

    def __init__(self, gate: SkewGate | None = None) -> None:
        self.gate = gate or SkewGate()

    def before_transaction(self, ctx: Context, name: str, evaluate: bool) -> None:
        """Every write is refused when its timestamp is off this endorser's clock (``clock``)."""
        if not evaluate:
            self.gate.check(ctx)

    # ---- members and stake
    @transaction
    def init_consortium(self, ctx: Context, orgs: list, quorum: str) -> dict:
        """Record the member orgs, their stake and balance, and the approval quorum (once, by an org admin)."""
        return members.init_consortium(ctx, orgs, quorum)

    @transaction
    def transfer_stake(self, ctx: Context, to_msp: str, amount: int) -> dict:
        """Move stake from the caller's org to another active member (org admin); stake owed to slashing stays."""
        return members.transfer_stake(ctx, to_msp, amount)

    @transaction
    def propose_stake_adjustment(self, ctx: Context, proposal_id: str, msp_id: str, delta: int, reason: str) -> dict:
        """Propose minting (+) or burning (-) an org's stake; applied at the stake quorum of approvals."""
        return members.propose_stake_adjustment(ctx, proposal_id, msp_id, delta, reason)

    @transaction
    def approve_stake_adjustment(self, ctx: Context, proposal_id: str) -> dict:
        """Approve a pending stake proposal as the caller's org admin."""
        return members.approve_stake_adjustment(ctx, proposal_id)

    @transaction
    def propose_status_change(self, ctx: Context, proposal_id: str, msp_id: str, status: str, reason: str) -> dict:
        """Propose suspending or reinstating an org; applied at the stake quorum of approvals."""
        return members.propose_status_change(ctx, proposal_id, msp_id, status, reason)

    @transaction
    def approve_status_change(self, ctx: Context, proposal_id: str) -> dict:
        """Approve a pending status proposal as the caller's org admin."""
        return members.approve_status_change(ctx, proposal_id)

    @transaction(evaluate=True)
    def get_org(self, ctx: Context, msp_id: str) -> dict:
        """One member org's record (stake, balance, status, stake owed to slashing)."""
        return members.get_org(ctx, msp_id)

    @transaction(evaluate=True)
    def list_orgs(self, ctx: Context) -> list:
        """Every member org's record."""
        return members.list_orgs(ctx)

    @transaction(evaluate=True)
    def org_history(self, ctx: Context, msp_id: str) -> list:
        """Every stake, balance, status and slashing-debt change of an org, with its reason and transaction."""
        return members.org_history(ctx, msp_id)

    @transaction(evaluate=True)
    def get_policy(self, ctx: Context) -> dict:
        """The stake-weighted endorsement policy in force (threshold, stake classes, minimal count vectors, policy string, envelope)."""
        return members.get_policy(ctx)

    # ---- admitting and removing orgs (channel config updates decided by stake)
    @transaction
    def propose_membership(self, ctx: Context, proposal_id: str, action: str, msp_id: str, name: str,
                           definition_sha256: str, update_sha256: str, reason: str) -> dict:
        """Propose admitting (add) or removing (remove) an org by the channel update hashing to update_sha256."""
        return membership.propose_membership(ctx, proposal_id, action, msp_id, name, definition_sha256,
                                             update_sha256, reason)

    @transaction
    def approve_membership(self, ctx: Context, proposal_id: str, update_sha256: str) -> dict:
        """Approve a pending membership proposal (and the channel update it names) as the caller's org admin."""
        return membership.approve_membership(ctx, proposal_id, update_sha256)

    @transaction
    def record_channel_update(self, ctx: Context, proposal_id: str, update_sha256: str, signers: list,
                              config_block: int) -> dict:
        """Record the orgs whose admins signed an applied proposal's channel update, and its config block."""
        return membership.record_channel_update(ctx, proposal_id, update_sha256, signers, config_block)

    @transaction(evaluate=True)
    def get_membership(self, ctx: Context, proposal_id: str) -> dict:
        """One membership proposal: approvals with their transactions, and the channel update's signers."""
        return membership.get_membership(ctx, proposal_id)

    @transaction(evaluate=True)
    def list_memberships(self, ctx: Context) -> list:
        """Every membership proposal."""
        return membership.list_memberships(ctx)

    # ---- jobs and rounds
    @transaction
    def create_job(self, ctx: Context, spec: dict) -> dict:
        """Create a training job from a spec (org admin); version 0 is its initial model, round 1 opens."""
        return jobs.create_job(ctx, spec)

    @transaction(evaluate=True)
    def get_job(self, ctx: Context, job_id: str) -> dict:
        """A job's record with its canonical spec (accepted back by ``create_job``)."""
        return jobs.get_job(ctx, job_id)

    @transaction(evaluate=True)
    def list_jobs(self, ctx: Context, page_size: int, bookmark: str) -> dict:
        """Jobs without their specs, a page at a time."""
        return jobs.list_jobs(ctx, page_size, bookmark)

    @transaction
    def register(self, ctx: Context, job_id: str, round: int, public_key: str) -> dict:
        """A participant's fresh X25519 key for a registering round, or for the round after a collecting one."""
        return registration.register(ctx, job_id, round, public_key)

    @transaction
    def start_round(self, ctx: Context, job_id: str, round: int) -> dict:
        """Move a registering round to collecting (everyone registered, or the window closed)."""
        return registration.start_round(ctx, job_id, round)

    @transaction
    def submit_update(self, ctx: Context, job_id: str, round: int, meta: dict) -> dict:
        """A participant's update: public meta; the bytes in transient ``update`` or served by its node."""
        return updates.submit_update(ctx, job_id, round, meta)

    @transaction
    def reveal_seeds(self, ctx: Context, job_id: str, round: int, left_out: list) -> dict:
        """A survivor's pairwise seeds (transient ``seeds``) with the participants left out of the aggregate."""
        return updates.reveal_seeds(ctx, job_id, round, left_out)

    @transaction
    def vote(self, ctx: Context, job_id: str, round: int, ballot: dict) -> dict:
        """An org's ballot on the result it computed, with its round key for the next round."""
        return votes.vote(ctx, job_id, round, ballot)

    @transaction
    def finalize_round(self, ctx: Context, job_id: str, round: int) -> dict:
        """Close a round (finalized into a version, or failed), settle incentives, open the next round."""
        return closing.finalize_round(ctx, job_id, round)

    @transaction(evaluate=True)
    def get_round(self, ctx: Context, job_id: str, round: int) -> dict:
        """A round's record."""
        roles.require_reader(ctx)
        return rounds.load(ctx, ident(job_id, "job_id"), round).to_dict()

    @transaction(evaluate=True)
    def list_rounds(self, ctx: Context, job_id: str) -> list:
        """A job's rounds, one line each."""
        return audit.job_rounds(ctx, job_id)

    @transaction(evaluate=True)
    def get_update(self, ctx: Context, job_id: str, round: int, msp_id: str) -> bytes:
        """The bytes of one org's update (masked in secure mode), for the job's participants."""
        return updates.get_update(ctx, job_id, round, msp_id)

    @transaction(evaluate=True)
    def get_revealed_seeds(self, ctx: Context, job_id: str, round: int, msp_id: str) -> dict:
        """The seeds one survivor revealed, for the job's participants."""
        return updates.get_revealed_seeds(ctx, job_id, round, msp_id)

    # ---- versions
    @transaction(evaluate=True)
    def get_version(self, ctx: Context, job_id: str, ref: str) -> dict:
        """A model version by number or alias."""
        return versions.get_version(ctx, job_id, ref)

    @transaction(evaluate=True)
    def list_versions(self, ctx: Context, job_id: str) -> list:
        """Every version of a job, from version 0."""
        return versions.list_versions(ctx, job_id)

    @transaction
    def set_alias(self, ctx: Context, job_id: str, alias: str, version: int) -> dict:
        """Point an alias (e.g. ``production``) at a finalized version (org admin)."""
        return versions.set_alias(ctx, job_id, alias, version)

    @transaction(evaluate=True)
    def list_aliases(self, ctx: Context, job_id: str) -> dict:
        """A job's aliases and the versions they point at."""
        return versions.list_aliases(ctx, job_id)

    @transaction
    def set_tag(self, ctx: Context, job_id: str, version: int, tag: str, value: str) -> dict:
        """Tag a version (org admin)."""
        return versions.set_tag(ctx, job_id, version, tag, value)

    @transaction(evaluate=True)
    def lineage(self, ctx: Context, job_id: str, ref: str) -> list:
        """A version's ancestors back to version 0."""
        return versions.lineage(ctx, job_id, ref)

    @transaction(evaluate=True)
    def compare_versions(self, ctx: Context, job_id: str, a: str, b: str) -> dict:
        """Two versions side by side: models, rounds, metrics, contributors, lineage relation."""
        return versions.compare_versions(ctx, job_id, a, b)

    # ---- audit
    @transaction(evaluate=True)
    def round_report(self, ctx: Context, job_id: str, round: int) -> dict:
        """A round with every org's records and their transactions."""
        return audit.round_report(ctx, job_id, round)

    @transaction(evaluate=True)
    def org_report(self, ctx: Context, msp_id: str) -> dict:
        """An org's participation, ballots, rewards and slashes."""
        return audit.org_report(ctx, msp_id)

    @transaction(evaluate=True)
    def key_history(self, ctx: Context, object_type: str, attrs: list) -> list:
        """Every committed value of one ledger key."""
        return audit.key_history(ctx, object_type, attrs)
