"""Roles from the client certificate: admin, trainer, auditor.

An explicit ``fedfabric.role`` attribute wins; otherwise node OU ``admin`` means admin and node OU
``client`` means trainer. Auditors read everything and write nothing.
"""
from __future__ import annotations

from fabshim.contract import ChaincodeError, Context
from fedfabric_protocol.states import MemberStatus, Role

from . import state

ADMIN, TRAINER, AUDITOR = Role.ADMIN.value, Role.TRAINER.value, Role.AUDITOR.value
ROLES = (ADMIN, TRAINER, AUDITOR)
PARTICIPANT_ROLES = (ADMIN, TRAINER)
ROLE_ATTR = "fedfabric.role"


def role_of(ctx: Context) -> str:
    cid = ctx.client_identity
    attr = cid.get_attribute(ROLE_ATTR)
    if attr is not None:
        if attr not in ROLES:
            raise ChaincodeError(f"unknown {ROLE_ATTR} '{attr}' (expected one of {', '.join(ROLES)})", 403)
        return attr
    if cid.has_ou("admin"):
        return ADMIN
    if cid.has_ou("client"):
        return TRAINER
    raise ChaincodeError(f"identity has no fedfabric role: need node OU admin or client, or attribute {ROLE_ATTR}", 403)


def member(ctx: Context) -> dict:
    """The caller's org record; refuses callers whose MSP is not a consortium member."""
    msp = ctx.client_identity.msp_id
    org = state.get(ctx, state.key(ctx, state.ORG, msp))
    if org is None:
        raise ChaincodeError(f"{msp} is not a member of the consortium", 403)
    return org


def require_reader(ctx: Context) -> tuple[dict, str]:
    """Any member identity with a role may read."""
    return member(ctx), role_of(ctx)


def require_writer(ctx: Context, tx: str, allowed: tuple[str, ...] = (ADMIN,)) -> tuple[dict, str]:
    """A member org in good standing whose caller holds one of ``allowed`` roles."""
    role = role_of(ctx)
    if role == AUDITOR:
        raise ChaincodeError(f"{tx}: auditors are read-only", 403)
    org = member(ctx)
    if role not in allowed:
        raise ChaincodeError(f"{tx}: role '{role}' is not allowed (requires {' or '.join(allowed)})", 403)
    if org.get("status") != MemberStatus.ACTIVE.value:
        raise ChaincodeError(f"{tx}: {org['msp_id']} is {org.get('status')}, not active", 403)
    return org, role


def require_participant(ctx: Context, tx: str, participants: list[str], job_id: str) -> dict:
    """A writer (admin or trainer) of an active member org that takes part in job ``job_id``."""
    org, _ = require_writer(ctx, tx, PARTICIPANT_ROLES)
    if org["msp_id"] not in participants:
        raise ChaincodeError(f"{tx}: {org['msp_id']} is not a participant of job {job_id} "
                             f"(participants: {', '.join(participants)})", 403)
    return org
