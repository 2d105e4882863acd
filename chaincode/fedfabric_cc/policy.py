"""Stake-weighted endorsement: "orgs holding >= num/den of the stake" as Fabric policies.

The rule is the OR of its minimal winning coalitions, each an AND of the members' peers. It is
emitted both as the lifecycle policy string and as SignaturePolicyEnvelope bytes for key-level
(state-based) endorsement. Integer arithmetic only; coalitions in canonical order (size, names).
"""
from __future__ import annotations

from itertools import combinations

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2

MAX_ORGS = 16  # 2^16 subsets: beyond this the coalition list is too large to be a usable policy


class PolicyError(ValueError):
    """The stake vector or threshold cannot be compiled."""


def minimal_winning_coalitions(stakes: dict[str, int], num: int, den: int) -> list[tuple[str, ...]]:
    """Sets of orgs whose stake reaches num/den of the total and none of whose proper subsets does."""
    if den <= 0 or num <= 0 or num > den:
        raise PolicyError(f"threshold {num}/{den} must be in (0, 1]")
    if any(int(s) < 0 for s in stakes.values()):
        raise PolicyError("stakes must not be negative")
    total = sum(int(s) for s in stakes.values())
    if total <= 0:
        raise PolicyError("total stake must be positive")
    names = sorted(m for m, s in stakes.items() if int(s) > 0)
    if len(names) > MAX_ORGS:
        raise PolicyError(f"more than {MAX_ORGS} staked orgs: the coalition policy would be too large")
    out: list[tuple[str, ...]] = []
    for size in range(1, len(names) + 1):
        for combo in combinations(names, size):
            if sum(int(stakes[m]) for m in combo) * den < num * total:
                continue
            if any(set(w) <= set(combo) for w in out):
                continue
            out.append(combo)
    return out


def policy_string(coalitions: list[tuple[str, ...]], role: str = "peer") -> str:
    """Lifecycle signature policy, e.g. ``OR(AND('Org1MSP.peer','Org2MSP.peer'),...)``."""
    if not coalitions:
        raise PolicyError("no winning coalition")

    def conj(c: tuple[str, ...]) -> str:
        p = ",".join(f"'{m}.{role}'" for m in c)
        return p if len(c) == 1 else f"AND({p})"

    parts = [conj(c) for c in coalitions]
    return parts[0] if len(parts) == 1 else f"OR({','.join(parts)})"


def _principal(msp_id: str) -> msp_principal_pb2.MSPPrincipal:
    role = msp_principal_pb2.MSPRole(msp_identifier=msp_id, role=msp_principal_pb2.MSPRole.PEER)
    return msp_principal_pb2.MSPPrincipal(principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
                                          principal=role.SerializeToString())


def signature_policy_envelope(coalitions: list[tuple[str, ...]]) -> bytes:
    """SignaturePolicyEnvelope bytes: NOutOf(1, [NOutOf(|c|, [SignedBy(peer of m) for m in c])])."""
    if not coalitions:
        raise PolicyError("no winning coalition")
    orgs = sorted({m for c in coalitions for m in c})
    index = {m: i for i, m in enumerate(orgs)}
    SP = policies_pb2.SignaturePolicy

    def conj(c: tuple[str, ...]) -> policies_pb2.SignaturePolicy:
        rules = [SP(signed_by=index[m]) for m in c]
        return SP(n_out_of=SP.NOutOf(n=len(rules), rules=rules))

    rules = [conj(c) for c in coalitions]
    rule = rules[0] if len(rules) == 1 else SP(n_out_of=SP.NOutOf(n=1, rules=rules))
    env = policies_pb2.SignaturePolicyEnvelope(version=0, rule=rule,
                                               identities=[_principal(m) for m in orgs])
    return env.SerializeToString(deterministic=True)


def decode_envelope(data: bytes) -> list[tuple[str, ...]]:
    """Coalitions back from envelope bytes (inverse of :func:`signature_policy_envelope`)."""
    env = policies_pb2.SignaturePolicyEnvelope()
    env.ParseFromString(data)
    orgs = []
    for p in env.identities:
        r = msp_principal_pb2.MSPRole()
        r.ParseFromString(p.principal)
        orgs.append(r.msp_identifier)

    def conj(sp: policies_pb2.SignaturePolicy) -> tuple[str, ...]:
        if sp.WhichOneof("Type") == "signed_by":
            return (orgs[sp.signed_by],)
        if sp.n_out_of.n != len(sp.n_out_of.rules):
            raise PolicyError("not a conjunction")
        return tuple(orgs[r.signed_by] for r in sp.n_out_of.rules)

    top = env.rule
    if top.WhichOneof("Type") == "n_out_of" and top.n_out_of.n == 1 and len(top.n_out_of.rules) > 1:
        return [conj(r) for r in top.n_out_of.rules]
    return [conj(top)]


def compile_policy(stakes: dict[str, int], num: int, den: int) -> dict:
    """Everything the ledger keeps about the current stake rule."""
    coalitions = minimal_winning_coalitions(stakes, num, den)
    return {"threshold": [num, den], "coalitions": [list(c) for c in coalitions],
            "policy": policy_string(coalitions), "envelope_hex": signature_policy_envelope(coalitions).hex()}
