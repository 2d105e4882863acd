"""Admitting and removing member orgs by governance, and the record of who signed the channel change.

Adding an org to the channel (or removing one) is a Fabric channel configuration update; the
consortium decides it like every other membership change, by stake. An admin proposes it with the
SHA-256 of the new org's public definition and of the ``ConfigUpdate`` it built
(``propose_membership``); admins of other orgs approve *that* update, by its hash, when they sign it
(``approve_membership``). Once the approvers hold the consortium's quorum of stake the change is
applied here in the same transaction: an admitted org becomes an active member with no stake (stake
is granted through the stake proposals), a removed org is suspended (no weight in votes, tallies or
the endorsement policy, which is recompiled). After the update was submitted to the orderer,
``record_channel_update`` writes the orgs whose admins' signatures the update carried and the config
block it landed in, so the ledger says who signed what.
"""
from __future__ import annotations

from typing import Any

from fabshim.contract import Context
from fedfabric_protocol.errors import show
from fedfabric_protocol.fields import HEX64, ident, matches
from fedfabric_protocol.spec import MSP_RE
from fedfabric_protocol.tally import active_stakes

from . import members, policy, roles, state
from .state import fail

ADD, REMOVE = "add", "remove"
ACTIONS = (ADD, REMOVE)
MAX_SIGNERS = 256


def _digest(value: Any, what: str) -> str:
    if not matches(HEX64, value):
        raise fail(f"{what} must be a SHA-256 as 64 lowercase hex characters")
    return value


def _msp(value: Any, what: str) -> str:
    return ident(value, what, MSP_RE)


def _proposal_key(ctx: Context, proposal_id: Any) -> str:
    """The key of an existing proposal's record, its id checked first."""
    return state.key(ctx, state.MEMBERSHIP_PROPOSAL, ident(proposal_id, "proposal_id"))


def _check_target(ctx: Context, action: str, msp_id: str) -> dict | None:
    """The org record a proposal is about: none for an admission, an active or suspended member for a
    removal."""
    org = state.get(ctx, state.key(ctx, state.ORG, msp_id))
    if action == ADD and org is not None:
        raise fail(f"{msp_id} is already a member of the consortium ({org['status']})", 409)
    if action == REMOVE:
        if org is None:
            raise fail(f"{msp_id} is not a member of the consortium", 404)
        if org.get("removed_by"):
            raise fail(f"{msp_id} was already removed (proposal {org['removed_by']})", 409)
        others = {**members.all_orgs(ctx), msp_id: {**org, "status": members.SUSPENDED}}
        if sum(active_stakes(others).values()) <= 0:
            raise fail(f"removing {msp_id} would leave no active stake in the consortium")
    return org


def propose_membership(ctx: Context, proposal_id: str, action: str, msp_id: str, name: str,
                       definition_sha256: str, update_sha256: str, reason: str) -> dict:
    """An admin proposes admitting (``add``) or removing (``remove``) ``msp_id``; its org approves at once."""
    org, _ = roles.require_writer(ctx, "propose_membership")
    pkey = members._new_proposal_key(ctx, state.MEMBERSHIP_PROPOSAL, proposal_id, "membership")
    if action not in ACTIONS:
        raise fail(f"action must be one of {', '.join(ACTIONS)}, got {show(action, 40)}")
    _msp(msp_id, "msp_id")
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        raise fail("name must be a string of 1..128 characters")
    members._check_reason(reason)
    _check_target(ctx, action, msp_id)
    prop = {"proposal_id": proposal_id, "action": action, "msp_id": msp_id, "name": name,
            "definition_sha256": _digest(definition_sha256, "definition_sha256"),
            "update_sha256": _digest(update_sha256, "update_sha256"), "reason": reason,
            "proposed_by": org["msp_id"], "approvals": [org["msp_id"]], "status": "pending",
            "created_at": state.now(ctx), "tx_ids": [ctx.stub.tx_id]}
    return _decide(ctx, pkey, prop, "MembershipProposed")


def approve_membership(ctx: Context, proposal_id: str, update_sha256: str) -> dict:
    """An admin approves a pending membership proposal: the channel update hashing to ``update_sha256``."""
    org, _ = roles.require_writer(ctx, "approve_membership")
    pkey = _proposal_key(ctx, proposal_id)
    prop = state.must_get(ctx, pkey, f"membership proposal {proposal_id}")
    if prop["status"] != "pending":
        raise fail(f"membership proposal {proposal_id} is already {prop['status']}", 409)
    if org["msp_id"] in prop["approvals"]:
        raise fail(f"{org['msp_id']} already approved membership proposal {proposal_id}", 409)
    if _digest(update_sha256, "update_sha256") != prop["update_sha256"]:
        raise fail(f"membership proposal {proposal_id} is about channel update {prop['update_sha256'][:16]}…, "
                   f"not {update_sha256[:16]}…: approve the update the proposal names")
    _check_target(ctx, prop["action"], prop["msp_id"])
    prop = {**prop, "approvals": sorted(prop["approvals"] + [org["msp_id"]]),
            "tx_ids": prop["tx_ids"] + [ctx.stub.tx_id]}
    return _decide(ctx, pkey, prop, "MembershipApproved")


def _decide(ctx: Context, pkey: str, prop: dict, event: str) -> dict:
    """Store the proposal; apply it once its approvers hold the consortium's quorum of active stake."""
    orgs = members.all_orgs(ctx)
    num, den = members.consortium(ctx)["quorum"]
    st = active_stakes(orgs)
    approving = sum(st.get(m, 0) for m in prop["approvals"])
    moved = None
    if approving * den >= num * sum(st.values()):
        prop = {**prop, "status": "applied", "applied_at": state.now(ctx)}
        moved = _apply(ctx, prop, orgs.get(prop["msp_id"]))
        event = "OrgAdmitted" if prop["action"] == ADD else "OrgRemoved"
    state.put(ctx, pkey, prop)
    body = {k: prop[k] for k in ("proposal_id", "action", "msp_id", "status", "approvals", "update_sha256")}
    body["policy"] = moved
    state.emit(ctx, event, body)
    return prop


def _apply(ctx: Context, prop: dict, org: dict | None) -> dict | None:
    """Admit (a member with no stake) or remove (suspended, policy recompiled); the new policy's summary
    if it changed."""
    ref = {"proposal_id": prop["proposal_id"]}
    msp = prop["msp_id"]
    if prop["action"] == ADD:
        rec = {"msp_id": msp, "name": prop["name"], "status": members.ACTIVE, "stake": 0, "balance": 0,
               "slash_owed": 0, "joined_at": state.now(ctx), "tx_id": ctx.stub.tx_id,
               "admitted_by": prop["proposal_id"], "history_seq": 1}
        state.put(ctx, state.key(ctx, state.ORG, msp), rec)
        members.ledger_entry(ctx, msp, "status", 0, None, members.ACTIVE, "admitted", ref, 0)
        return None
    after = {**org, "status": members.SUSPENDED, "removed_by": prop["proposal_id"]}
    compiled = members.write_changes(ctx, {msp: org}, {msp: after}, "removed", ref)
    return policy.summary(compiled)


def record_channel_update(ctx: Context, proposal_id: str, update_sha256: str, signers: list,
                          config_block: int) -> dict:
    """Record, once, that the applied proposal's channel update was committed in ``config_block``,
    carrying signatures of the admins of ``signers`` (MSP ids, as read from the update)."""
    org, _ = roles.require_writer(ctx, "record_channel_update")
    pkey = _proposal_key(ctx, proposal_id)
    prop = state.must_get(ctx, pkey, f"membership proposal {proposal_id}")
    if prop["status"] != "applied":
        raise fail(f"membership proposal {proposal_id} is {prop['status']}: the consortium has not approved "
                   "it, its channel update must not be submitted", 409)
    if "channel_update" in prop:
        raise fail(f"the channel update of membership proposal {proposal_id} is already recorded "
                   f"(block {prop['channel_update']['config_block']})", 409)
    if _digest(update_sha256, "update_sha256") != prop["update_sha256"]:
        raise fail(f"membership proposal {proposal_id} approved channel update {prop['update_sha256'][:16]}…, "
                   f"not {update_sha256[:16]}…")
    if not isinstance(signers, list) or not 0 < len(signers) <= MAX_SIGNERS:
        raise fail(f"signers must be a non-empty list of at most {MAX_SIGNERS} MSP ids")
    signed = sorted({_msp(s, "signers[]") for s in signers})
    if isinstance(config_block, bool) or not isinstance(config_block, int) or config_block < 1:
        raise fail("config_block must be a positive block number")
    prop = {**prop, "channel_update": {"signers": signed, "config_block": config_block,
                                       "recorded_by": org["msp_id"], "recorded_at": state.now(ctx),
                                       "tx_id": ctx.stub.tx_id}}
    state.put(ctx, pkey, prop)
    state.emit(ctx, "ChannelUpdateRecorded", {"proposal_id": proposal_id, "msp_id": prop["msp_id"],
                                              "action": prop["action"], "signers": signed,
                                              "config_block": config_block})
    return prop


def get_membership(ctx: Context, proposal_id: str) -> dict:
    """A membership proposal's record: its approvals, status and recorded channel update."""
    roles.require_reader(ctx)
    return state.must_get(ctx, _proposal_key(ctx, proposal_id), f"membership proposal {proposal_id}")


def list_memberships(ctx: Context) -> list:
    """Every membership proposal, by id."""
    roles.require_reader(ctx)
    return [p for _, p in state.scan(ctx, state.MEMBERSHIP_PROPOSAL)]
