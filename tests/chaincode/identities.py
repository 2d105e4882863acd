"""Test identities: an org CA per MSP and client certs with node OUs / fedfabric.role attributes."""
from __future__ import annotations

import datetime
from functools import lru_cache
from typing import Optional

from fabshim.memstub import serialized_identity
from fedfabric.network import certs

_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
VALIDITY = certs.Validity(_START, _START + datetime.timedelta(days=3650))


@lru_cache(maxsize=None)
def _ca(msp: str) -> certs.Credential:
    return certs.issue(certs.subject(f"ca.{msp.lower()}", organization=msp.lower()), certs.CA, validity=VALIDITY)


@lru_cache(maxsize=None)
def creator(msp: str, cn: str, ous: tuple[str, ...] = (), attrs: Optional[tuple[tuple[str, str], ...]] = None) -> bytes:
    """SerializedIdentity bytes for a client cert issued by ``msp``'s CA."""
    cert = certs.issue(certs.subject(cn, organization=msp.lower(), units=ous), certs.IDENTITY, _ca(msp),
                       attributes=None if attrs is None else dict(attrs), validity=VALIDITY)
    return serialized_identity(msp, cert.cert_pem)


def admin(msp: str) -> bytes:
    return creator(msp, f"Admin@{msp}", ("admin",))


def trainer(msp: str) -> bytes:
    return creator(msp, f"User1@{msp}", ("client",))


def auditor(msp: str) -> bytes:
    return creator(msp, f"Auditor@{msp}", ("client",), (("fedfabric.role", "auditor"),))


def peer(msp: str) -> bytes:
    return creator(msp, f"peer0.{msp}", ("peer",))
