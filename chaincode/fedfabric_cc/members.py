"""Member orgs, stake, balances, their history, and the stake-weighted endorsement policy."""
from __future__ import annotations

from typing import Any, Optional

from fabshim.contract import Context
from fedfabric_protocol.errors import show
from fedfabric_protocol.fields import Fields, fraction, ident, valid_text
from fedfabric_protocol.spec import MAX_ORGS, MSP_RE
from fedfabric_protocol import stakerule
from fedfabric_protocol.states import MemberStatus
from fedfabric_protocol.tally import active_stakes as stakes

from . import policy, roles, state
from .state import fail

MAX_AMOUNT = 10**15
ACTIVE, SUSPENDED = MemberStatus.ACTIVE.value, MemberStatus.SUSPENDED.value
STATUSES = (ACTIVE, SUSPENDED)
HISTORY_FIELDS = ("stake", "balance", "status", "slash_owed")


def amount(value: Any, what: str, allow_zero: bool = True, signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"{what} must be an integer, got {type(value).__name__}")
    lo = -MAX_AMOUNT if signed else (0 if allow_zero else 1)
    if not lo <= value <= MAX_AMOUNT:
        raise fail(f"{what} {show(value, 40)} out of range [{lo}, {MAX_AMOUNT}]")
    return value


def owed(org: dict) -> int:
    """Stake an org owes to slashing and has not given up yet (it cannot be transferred away)."""
    return int(org.get("slash_owed", 0))


def all_orgs(ctx: Context) -> dict[str, dict]:
    return {o["msp_id"]: o for _, o in state.scan(ctx, state.ORG)}


def orgs_by_id(ctx: Context, msps) -> dict[str, dict]:
    """The org records of ``msps`` read by point (unknown ids left out)."""
    out = {}
    for m in sorted(set(msps)):
        o = state.get(ctx, state.key(ctx, state.ORG, m))
        if o is not None:
            out[m] = o
    return out


def consortium(ctx: Context) -> dict:
    c = state.get(ctx, state.key(ctx, state.CONSORTIUM))
    if c is None:
        raise fail("consortium not initialized: run init_consortium first", 409)
    return c


# ---- bootstrap
def init_consortium(ctx: Context, orgs: list, quorum: str) -> dict:
    if state.get(ctx, state.key(ctx, state.CONSORTIUM)) is not None:
        raise fail("consortium already initialized", 409)
    cid = ctx.client_identity
    if roles.role_of(ctx) != roles.ADMIN:
        raise fail("init_consortium: requires an org admin", 403)
    num, den = fraction(quorum, "quorum")
    if not isinstance(orgs, list) or not 0 < len(orgs) <= MAX_ORGS:
        raise fail(f"orgs must be a non-empty JSON list of at most {MAX_ORGS} orgs")
    records: dict[str, dict] = {}
    for i, o in enumerate(orgs):
        msp = Fields(o, f"orgs[{i}]", ("msp_id", "name", "stake", "balance")).text("msp_id", MSP_RE)
        if msp in records:
            raise fail(f"orgs[{i}]: duplicate msp_id {msp}")
        name = o.get("name", msp)
        if not isinstance(name, str) or not 0 < len(name) <= 128 or not valid_text(name):
            raise fail(f"orgs[{i}].name must be a string of 1..128 characters of text")
        records[msp] = {"msp_id": msp, "name": name, "status": "active",
                        "stake": amount(o.get("stake"), f"orgs[{i}].stake"),
                        "balance": amount(o.get("balance", 0), f"orgs[{i}].balance"), "slash_owed": 0,
                        "joined_at": state.now(ctx), "tx_id": ctx.stub.tx_id, "history_seq": 2}
    if cid.msp_id not in records:
        raise fail(f"init_consortium: caller's MSP {cid.msp_id} is not in the org list", 403)
    compiled = compile_for(stakes(records), num, den)
    # the chaincode's lifecycle policy is compiled from the same consortium.yaml stakes at deploy time:
    # clients choose endorsers that satisfy both it and the current (key-level) policy
    compiled["lifecycle"] = stakerule.own_rule(compiled)
    conf = {"quorum": [num, den], "initialized_at": state.now(ctx), "initialized_by": cid.msp_id,
            "tx_id": ctx.stub.tx_id}
    state.put(ctx, state.key(ctx, state.CONSORTIUM), conf)
    for msp, rec in sorted(records.items()):
        state.put(ctx, state.key(ctx, state.ORG, msp), rec)
        ledger_entry(ctx, msp, "stake", rec["stake"], 0, rec["stake"], "genesis", {}, 0)
        ledger_entry(ctx, msp, "balance", rec["balance"], 0, rec["balance"], "genesis", {}, 1)
    state.put(ctx, state.key(ctx, state.POLICY), compiled)
    state.emit(ctx, "ConsortiumInitialized", {"orgs": sorted(records), "policy": policy.summary(compiled)})
    return {"consortium": conf, "policy": compiled}


def compile_for(stake_map: dict[str, int], num: int, den: int) -> dict:
    """The compiled endorsement policy of ``stake_map``; a stake vector that has no compact exact
    policy is refused (the transaction asking for it fails and writes nothing)."""
    try:
        return policy.compile_policy(stake_map, num, den)
    except policy.PolicyError as exc:
        raise fail(f"cannot compile endorsement policy: {exc}") from None


# ---- history
def ledger_entry(ctx: Context, msp: str, field: str, delta: int, before: Any, after: Any,
                 reason: str, ref: dict, seq: int) -> None:
    """History entry number ``seq`` of an org (the org record keeps the next number); a status change
    has ``delta`` 0 and the old and new status as ``before`` / ``after``."""
    ts = state.now(ctx)
    state.put(ctx, state.key(ctx, state.LEDGER, msp, f"{seq:012d}"),
              {"msp_id": msp, "seq": seq, "field": field, "delta": delta, "before": before, "after": after,
               "reason": reason, "ref": ref, "ts": ts, "tx_id": ctx.stub.tx_id})


def write_changes(ctx: Context, before: dict[str, dict], after: dict[str, dict], reason: str,
                  ref: Optional[dict] = None, quorum: Optional[tuple[int, int]] = None,
                  compiled: Optional[dict] = None) -> Optional[dict]:
    """Write changed org records + one history entry per changed field; recompile the policy if
    any stake or status moved (``compiled``: the policy of the stakes after the change, when the caller
    has compiled it already). Everything must have been read before calling this (no read-your-writes)."""
    weight_moved = False
    for msp in sorted(after):
        b, a = before[msp], dict(after[msp])
        if a == b:
            continue
        seq = b["history_seq"]
        for field in HISTORY_FIELDS:
            was, now = b.get(field, 0), a.get(field, 0)
            if now != was:
                delta = 0 if field == "status" else now - was
                ledger_entry(ctx, msp, field, delta, was, now, reason, ref or {}, seq)
                seq += 1
                weight_moved |= field in ("stake", "status")
        a["history_seq"] = seq
        state.put(ctx, state.key(ctx, state.ORG, msp), a)
    if not weight_moved:
        return None
    if compiled is None:
        num, den = quorum if quorum else tuple(consortium(ctx)["quorum"])
        compiled = compile_for(stakes({**all_orgs(ctx), **after}), num, den)
    previous = state.must_get(ctx, state.key(ctx, state.POLICY), "endorsement policy")
    compiled["lifecycle"] = stakerule.lifecycle_rule(previous)
    state.put(ctx, state.key(ctx, state.POLICY), compiled)
    ep = bytes.fromhex(compiled["envelope_hex"])
    for attrs, job in state.scan(ctx, state.JOB):
        ctx.stub.set_state_validation_parameter(state.key(ctx, state.JOB, *attrs), ep)
        if job.get("status") == "active" and job.get("current_round"):
            rk = state.key(ctx, state.ROUND, attrs[0], state.rnd(job["current_round"]))
            ctx.stub.set_state_validation_parameter(rk, ep)
    for attrs, _ in state.scan(ctx, state.VERSION):
        ctx.stub.set_state_validation_parameter(state.key(ctx, state.VERSION, *attrs), ep)
    return compiled


def current_endorsement(ctx: Context) -> bytes:
    return bytes.fromhex(state.must_get(ctx, state.key(ctx, state.POLICY), "endorsement policy")["envelope_hex"])


# ---- stake transactions
def transfer_stake(ctx: Context, to_msp: str, value: int) -> dict:
    org, _ = roles.require_writer(ctx, "transfer_stake")
    value = amount(value, "amount", allow_zero=False)
    ident(to_msp, "transfer_stake: to_msp", MSP_RE)
    if to_msp == org["msp_id"]:
        raise fail("transfer_stake: cannot transfer to your own org")
    dest = state.get(ctx, state.key(ctx, state.ORG, to_msp))
    if dest is None:
        raise fail(f"transfer_stake: {to_msp} is not a member of the consortium", 404)
    if dest["status"] != "active":
        raise fail(f"transfer_stake: {to_msp} is {dest['status']}, not active")
    if org["stake"] - owed(org) < value:
        owes = f", {owed(org)} of it owed to slashing" if owed(org) else ""
        raise fail(f"transfer_stake: {org['msp_id']} holds {org['stake']} stake{owes}, cannot transfer {value}")
    before = {org["msp_id"]: org, to_msp: dest}
    after = {org["msp_id"]: {**org, "stake": org["stake"] - value}, to_msp: {**dest, "stake": dest["stake"] + value}}
    if sum(stakes({**all_orgs(ctx), **after}).values()) <= 0:
        raise fail("transfer_stake: total stake would be zero")
    compiled = write_changes(ctx, before, after, "transfer", {"from": org["msp_id"], "to": to_msp})
    state.emit(ctx, "StakeTransferred", {"from": org["msp_id"], "to": to_msp, "amount": value,
                                         "policy": policy.summary(compiled)})
    return {"from": after[org["msp_id"]], "to": after[to_msp]}


def propose_stake_adjustment(ctx: Context, proposal_id: str, msp_id: str, delta: int, reason: str) -> dict:
    """An admin proposes minting (+) or burning (-) stake of an org; applied once admins of orgs
    holding the consortium quorum of stake approved it."""
    org, _ = roles.require_writer(ctx, "propose_stake_adjustment")
    pkey = _new_proposal_key(ctx, state.STAKE_PROPOSAL, proposal_id, "stake")
    delta = amount(delta, "delta", signed=True)
    if delta == 0:
        raise fail("delta must not be zero")
    _check_reason(reason)
    target = _target(ctx, msp_id)
    _check_stake_change(target, delta)
    _check_compiles(ctx, {**target, "stake": target["stake"] + delta})
    prop = {"proposal_id": proposal_id, "msp_id": msp_id, "delta": delta, "reason": reason,
            "proposed_by": org["msp_id"], "approvals": [org["msp_id"]], "status": "pending",
            "created_at": state.now(ctx), "tx_ids": [ctx.stub.tx_id]}
    return _decide(ctx, prop, pkey, target, STAKE_KIND, "StakeAdjustmentProposed")


def approve_stake_adjustment(ctx: Context, proposal_id: str) -> dict:
    org, _ = roles.require_writer(ctx, "approve_stake_adjustment")
    ident(proposal_id, "proposal_id")
    pkey = state.key(ctx, state.STAKE_PROPOSAL, proposal_id)
    prop, target = _pending(ctx, pkey, f"stake proposal {proposal_id}", org["msp_id"])
    _check_stake_change(target, prop["delta"], now=True)
    return _decide(ctx, _approved_by(ctx, prop, org), pkey, target, STAKE_KIND, "StakeAdjustmentApproved")


def propose_status_change(ctx: Context, proposal_id: str, msp_id: str, status: str, reason: str) -> dict:
    """An admin proposes suspending or reinstating an org; applied once admins of orgs holding the
    consortium quorum of stake approved it. A suspended org cannot write, is not drawn as leader,
    and holds no weight in tallies or the endorsement policy."""
    org, _ = roles.require_writer(ctx, "propose_status_change")
    pkey = _new_proposal_key(ctx, state.STATUS_PROPOSAL, proposal_id, "status")
    if status not in STATUSES:
        raise fail(f"status must be one of {', '.join(STATUSES)}, got {show(status, 40)}")
    _check_reason(reason)
    target = _target(ctx, msp_id)
    _check_status_change(ctx, target, status)
    _check_compiles(ctx, {**target, "status": status})
    prop = {"proposal_id": proposal_id, "msp_id": msp_id, "new_status": status, "reason": reason,
            "proposed_by": org["msp_id"], "approvals": [org["msp_id"]], "status": "pending",
            "created_at": state.now(ctx), "tx_ids": [ctx.stub.tx_id]}
    return _decide(ctx, prop, pkey, target, STATUS_KIND, "StatusChangeProposed")


def approve_status_change(ctx: Context, proposal_id: str) -> dict:
    org, _ = roles.require_writer(ctx, "approve_status_change")
    ident(proposal_id, "proposal_id")
    pkey = state.key(ctx, state.STATUS_PROPOSAL, proposal_id)
    prop, target = _pending(ctx, pkey, f"status proposal {proposal_id}", org["msp_id"])
    _check_status_change(ctx, target, prop["new_status"])
    return _decide(ctx, _approved_by(ctx, prop, org), pkey, target, STATUS_KIND, "StatusChangeApproved")


# ---- the proposal mechanism shared by stake and status changes
STAKE_KIND = {"field": "stake", "reason": "adjustment", "applied_event": "StakeAdjusted"}
STATUS_KIND = {"field": "status", "reason": "status-change", "applied_event": "OrgStatusChanged"}


def _new_proposal_key(ctx: Context, object_type: str, proposal_id: str, what: str) -> str:
    ident(proposal_id, "proposal_id")
    pkey = state.key(ctx, object_type, proposal_id)
    if state.get(ctx, pkey) is not None:
        raise fail(f"{what} proposal {proposal_id} already exists", 409)
    return pkey


def _check_reason(reason: Any) -> None:
    if not isinstance(reason, str) or not 0 < len(reason) <= 256:
        raise fail("reason must be 1..256 characters")


def _target(ctx: Context, msp_id: str) -> dict:
    ident(msp_id, "msp_id", MSP_RE)
    target = state.get(ctx, state.key(ctx, state.ORG, msp_id))
    if target is None:
        raise fail(f"{msp_id} is not a member of the consortium", 404)
    return target


def _pending(ctx: Context, pkey: str, what: str, approver: str) -> tuple[dict, dict]:
    """A pending proposal the caller has not approved yet, and its target org."""
    prop = state.must_get(ctx, pkey, what)
    if prop["status"] != "pending":
        raise fail(f"{what} is already {prop['status']}", 409)
    if approver in prop["approvals"]:
        raise fail(f"{approver} already approved {what}", 409)
    return prop, state.must_get(ctx, state.key(ctx, state.ORG, prop["msp_id"]), f"org {prop['msp_id']}")


def _approved_by(ctx: Context, prop: dict, org: dict) -> dict:
    return {**prop, "approvals": sorted(prop["approvals"] + [org["msp_id"]]),
            "tx_ids": prop["tx_ids"] + [ctx.stub.tx_id]}


def _check_stake_change(target: dict, delta: int, now: bool = False) -> None:
    if target["stake"] + delta < 0:
        holds = "now holds" if now else "holds"
        raise fail(f"{target['msp_id']} {holds} {target['stake']} stake; cannot burn {-delta}")


def _check_compiles(ctx: Context, after: dict) -> None:
    """Refuse, when it is proposed, a change whose stake vector would have no compact exact policy
    (checked again when it is applied: stake may move in between)."""
    num, den = consortium(ctx)["quorum"]
    st = stakes({**all_orgs(ctx), after["msp_id"]: after})
    if sum(st.values()) > 0:
        compile_for(st, num, den)


def _check_status_change(ctx: Context, target: dict, status: str) -> None:
    if target["status"] == status:
        raise fail(f"{target['msp_id']} is already {status}", 409)
    if status != ACTIVE and sum(stakes({**all_orgs(ctx), target["msp_id"]: {**target, "status": status}}).values()) <= 0:
        raise fail(f"suspending {target['msp_id']} would leave no active stake in the consortium")


def _changed(prop: dict, target: dict, kind: dict) -> dict:
    """The target's record once the proposal is applied; a burn leaves it owing at most its stake."""
    if kind["field"] == "stake":
        stake = target["stake"] + prop["delta"]
        return {**target, "stake": stake, "slash_owed": min(owed(target), stake)}
    return {**target, "status": prop["new_status"]}


def _decide(ctx: Context, prop: dict, pkey: str, target: dict, kind: dict, event: str) -> dict:
    """Store the proposal; apply it (history, policy) once its approvers hold the stake quorum."""
    orgs = all_orgs(ctx)
    num, den = consortium(ctx)["quorum"]
    st = stakes(orgs)
    approving = sum(st.get(m, 0) for m in prop["approvals"])
    compiled = None
    if approving * den >= num * sum(st.values()):
        after = _changed(prop, target, kind)
        if sum(stakes({**orgs, target["msp_id"]: after}).values()) <= 0:
            raise fail(f"{kind['field']} change would leave zero total stake")
        prop = {**prop, "status": "applied", "applied_at": state.now(ctx)}
        compiled = write_changes(ctx, {target["msp_id"]: target}, {target["msp_id"]: after}, kind["reason"],
                                 {"proposal_id": prop["proposal_id"]}, (num, den))
        event = kind["applied_event"]
    state.put(ctx, pkey, prop)
    body = {k: prop[k] for k in ("proposal_id", "msp_id", "status") if k in prop}
    body.update({k: prop[k] for k in ("delta", "new_status") if k in prop})
    body["policy"] = policy.summary(compiled)
    state.emit(ctx, event, body)
    return prop


# ---- queries
def get_org(ctx: Context, msp_id: str) -> dict:
    roles.require_reader(ctx)
    ident(msp_id, "msp_id", MSP_RE)
    return state.must_get(ctx, state.key(ctx, state.ORG, msp_id), f"org {msp_id}")


def list_orgs(ctx: Context) -> list:
    roles.require_reader(ctx)
    return [o for _, o in state.scan(ctx, state.ORG)]


def org_history(ctx: Context, msp_id: str) -> list:
    roles.require_reader(ctx)
    ident(msp_id, "msp_id", MSP_RE)
    return [e for _, e in state.scan(ctx, state.LEDGER, msp_id)]


def get_policy(ctx: Context) -> dict:
    roles.require_reader(ctx)
    return state.must_get(ctx, state.key(ctx, state.POLICY), "endorsement policy")
