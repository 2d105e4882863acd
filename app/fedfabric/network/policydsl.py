"""Fabric's signature policy language, read into a SignaturePolicyEnvelope (what ``peer lifecycle`` does
with ``--signature-policy``, without the command line's 128 KiB cap on one argument).

    policy    := principal | gate
    gate      := ("AND" | "OR") "(" policy ("," policy)* ")"  |  "OutOf" "(" N "," policy ("," policy)* ")"
    principal := "'" MSPID "." ROLE "'"        (double quotes too; ROLE member, admin, client, peer, orderer)

Gate names are case-insensitive, as Fabric's are. Every distinct principal is one identity of the
envelope, in order of first appearance. A text that does not parse raises :class:`PolicyTextError`
naming the position.
"""
from __future__ import annotations

import re

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2

MAX_TEXT = 4 * 1024 * 1024
ROLES = {"member": msp_principal_pb2.MSPRole.MEMBER, "admin": msp_principal_pb2.MSPRole.ADMIN,
         "client": msp_principal_pb2.MSPRole.CLIENT, "peer": msp_principal_pb2.MSPRole.PEER,
         "orderer": msp_principal_pb2.MSPRole.ORDERER}
_TOKEN = re.compile(r"\s*(?:(?P<gate>[A-Za-z]+)\s*\(|(?P<principal>'[^']*'|\"[^\"]*\")|(?P<num>\d+)|(?P<sym>[,)]))")


class PolicyTextError(ValueError):
    """A signature policy text that is not Fabric's policy language."""


def envelope(text: str) -> bytes:
    """The SignaturePolicyEnvelope of ``text``, serialized deterministically."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyTextError("empty signature policy")
    if len(text) > MAX_TEXT:
        raise PolicyTextError(f"signature policy of {len(text)} characters: at most {MAX_TEXT}")
    identities: dict[tuple[str, int], int] = {}
    pos = 0
    SP = policies_pb2.SignaturePolicy

    def token() -> re.Match:
        nonlocal pos
        m = _TOKEN.match(text, pos)
        if m is None:
            if not text[pos:].strip():
                raise PolicyTextError(f"the policy ends early, at character {len(text)} (a ')' missing?)")
            raise PolicyTextError(f"unexpected {text[pos:pos + 20]!r} at character {pos}")
        pos = m.end()
        return m

    def expect(sym: str) -> None:
        m = token()
        if m.group("sym") != sym:
            raise PolicyTextError(f"expected {sym!r} before character {pos}")

    def rule() -> policies_pb2.SignaturePolicy:
        m = token()
        if m.group("principal"):
            return SP(signed_by=principal(m.group("principal")[1:-1]))
        name = (m.group("gate") or "").lower()
        if name not in ("and", "or", "outof"):
            raise PolicyTextError(f"expected a principal or AND/OR/OutOf before character {pos}")
        n = None
        if name == "outof":
            num = token()
            if not num.group("num"):
                raise PolicyTextError(f"OutOf needs a count first, before character {pos}")
            n = int(num.group("num"))
            expect(",")
        rules = [rule()]
        while True:
            m = token()
            if m.group("sym") == ")":
                break
            if m.group("sym") != ",":
                raise PolicyTextError(f"expected ',' or ')' before character {pos}")
            rules.append(rule())
        n = len(rules) if name == "and" else 1 if name == "or" else n
        if not 1 <= n <= len(rules):
            raise PolicyTextError(f"OutOf({n}, …) over {len(rules)} policies, before character {pos}")
        return SP(n_out_of=SP.NOutOf(n=n, rules=rules))

    def principal(body: str) -> int:
        msp, _, role = body.rpartition(".")
        if not msp or role not in ROLES:
            raise PolicyTextError(f"principal {body!r}: expected 'MSPID.role' with role one of {', '.join(ROLES)}")
        return identities.setdefault((msp, ROLES[role]), len(identities))

    try:
        root = rule()
    except RecursionError:
        raise PolicyTextError("signature policy nested too deeply") from None
    if text[pos:].strip():
        raise PolicyTextError(f"unexpected {text[pos:pos + 20].strip()!r} after the policy, at character {pos}")
    principals = [msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=msp_principal_pb2.MSPRole(msp_identifier=msp, role=role).SerializeToString())
        for (msp, role) in identities]
    env = policies_pb2.SignaturePolicyEnvelope(version=0, rule=root, identities=principals)
    return env.SerializeToString(deterministic=True)
