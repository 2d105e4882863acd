"""Enroll an org's users through its Fabric CA with hfc (fabric-sdk-py), with a fedfabric role.

``enroll(org, name, role)`` registers ``<name>@<org domain>`` at the org's ``fabric-ca-server`` as the
CA's bootstrap admin -- identity type ``client`` (the certificate's OU, so the MSP's NodeOUs make it
a client) and the attribute ``fedfabric.role=<role>:ecert`` (in the certificate, read by the
chaincode) -- enrolls it, and writes a standard MSP directory under the run dir's
``users/<name>@<domain>/msp`` (signcerts, keystore 0600, cacerts, tlscacerts, NodeOUs config.yaml),
so ``fedfabric.connect.connect(org, name)`` and every ``--user NAME`` option work with it.

Only ``hfc.fabric_ca`` is imported: it sits beside ``fabric_protos`` in one process, ``hfc.fabric``
(its own generated protobufs) would not. Two adaptations of hfc 1.0.0 to today's stack, both at
hfc's own extension points (a CAClient subclass and a crypto suite passed to CAService):

* Authorization tokens. hfc signs ``b64(body).b64(cert)``, the Fabric CA 1.3 form; Fabric CA 1.4 and
  later verify ``METHOD.b64(request URI).b64(body).b64(cert)`` unless the server runs with
  ``FABRIC_CA_SERVER_COMPATIBILITY_MODE_V1_3``. The client below signs the current form over the
  exact bytes it sends, so the servers keep compatibility mode off.
* Key generation. hfc passes the curve class where ``cryptography`` >= 42 wants an instance.

Idempotent: a user that already has an MSP here with the same role is left as it is; one registered
at the CA whose MSP was lost gets a new random secret and is enrolled again. The enrollment secret
is random, used once and never stored or shown; the bootstrap admin's password is read from its
0600 file under the run dir.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from . import ca as fabricca, paths
from .certs import ATTRIBUTE_OID, key_pem
from .config import ConfigError, ConsortiumConfig, PeerOrg, load_config
from .identities import write_client_msp
from .layout import Layout

ROLES = ("auditor", "trainer", "admin")
ROLE_ATTR = "fedfabric.role"          # what chaincode/fedfabric_cc/roles.py reads
IDENTITY_TYPE = "client"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NOT_FOUND = 63                       # Fabric CA error code: no such identity


class EnrollError(RuntimeError):
    """Enrollment failed; the message says why and what to do."""


@dataclass(frozen=True)
class Enrolled:
    org: str
    name: str
    enrollment_id: str
    role: str
    msp_dir: Path
    created: bool          # False: an MSP with this role was already there (nothing changed)
    ca: str                # node id of the CA (ca.org1), or "" when nothing was asked of it


def cert_role(cert_pem: bytes) -> str | None:
    """The ``fedfabric.role`` attribute of a certificate (None without one)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        raw = cert.extensions.get_extension_for_oid(ATTRIBUTE_OID).value.value  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        return None
    try:
        return json.loads(raw).get("attrs", {}).get(ROLE_ATTR)
    except (ValueError, AttributeError):
        return None


def _msp_cert(msp: Path) -> Path | None:
    certs = sorted((msp / "signcerts").glob("*.pem")) if (msp / "signcerts").is_dir() else []
    return certs[0] if certs else None


# ---- hfc, adapted -------------------------------------------------------------------------------

def _hfc() -> tuple[Any, Any, Any, Any]:
    try:
        from hfc.fabric_ca.caservice import CAClient, CAService
        from hfc.fabric_ca.identityService import IdentityService
        from hfc.util.crypto.crypto import Ecies
    except ImportError as exc:
        raise EnrollError(f"hfc (fabric-sdk-py) is not installed in this environment ({exc}); run ./setup.sh, "
                          "which installs it with `pip install --no-deps fabric-sdk-py==1.0.0`") from None
    return CAClient, CAService, IdentityService, Ecies


class _Pending:
    """What ``generateAuthToken`` hands to the transport: the token is signed once method and URI
    are known (hfc computes it before it knows either)."""

    def __init__(self, registrar: Any) -> None:
        self.registrar = registrar


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _service(layout: Layout, org: PeerOrg, timeout: float) -> Any:
    """An hfc ``CAService`` for ``org``'s CA: TLS verified against the org's TLS CA."""
    import requests

    CAClient, CAService, _, Ecies = _hfc()

    class Suite(Ecies):  # type: ignore[misc, valid-type]
        def generate_private_key(self):  # noqa: ANN202 - hfc's signature
            from cryptography.hazmat.primitives.asymmetric import ec
            return ec.generate_private_key(self.curve())

    class Client(CAClient):  # type: ignore[misc, valid-type]
        def generateAuthToken(self, req, registrar):  # noqa: ANN001, ANN202, N802 - hfc's names
            return _Pending(registrar)

        def _send(self, method: str, path: str, **param: Any) -> tuple[Any, int]:
            headers = dict(param.pop("headers", None) or {})
            pending = headers.pop("Authorization", None)
            body = b""
            if param.get("json") is not None:
                body = json.dumps(param.pop("json")).encode()
                headers["Content-Type"] = "application/json"
            prepared = requests.Request(method, self._base_url + path, data=body or None, headers=headers,
                                        auth=param.pop("auth", None)).prepare()
            if isinstance(pending, _Pending):
                url = urlsplit(prepared.url)
                uri = url.path + (f"?{url.query}" if url.query else "")
                cert = pending.registrar._cert
                message = f"{method}.{_b64(uri.encode())}.{_b64(body)}.{_b64(cert)}".encode()
                signature = self._cryptoPrimitives.sign(pending.registrar._private_key, message)
                prepared.headers["Authorization"] = f"{_b64(cert)}.{_b64(signature)}"
            with requests.Session() as session:
                resp = session.send(prepared, verify=param.get("verify", True), timeout=timeout)
            try:
                return resp.json(), resp.status_code
            except ValueError:
                raise EnrollError(f"{org.ca_node_id} answered {method} {path} with HTTP {resp.status_code} "
                                  f"and no JSON: {resp.text[:200]!r}") from None

        def _send_ca_post(self, path, **param):  # noqa: ANN001, ANN202
            return self._send("POST", path, **param)

        def _send_ca_get(self, path, **param):  # noqa: ANN001, ANN202
            return self._send("GET", path, **param)

        def _send_ca_update(self, path, **param):  # noqa: ANN001, ANN202
            return self._send("PUT", path, **param)

        def _send_ca_delete(self, path, **param):  # noqa: ANN001, ANN202
            return self._send("DELETE", path, **param)

    suite = Suite()
    tls_ca = str(layout.org_tls_ca(org))
    service = CAService(target=layout.ca_endpoint(org), ca_certs_path=tls_ca, crypto=suite,
                        ca_name=org.ca_node_id)
    service._ca_client = Client(layout.ca_endpoint(org), tls_ca, ca_name=org.ca_node_id,
                                cryptoPrimitives=suite)
    return service


def _tls_reachable(layout: Layout, org: PeerOrg, timeout: float = 3.0) -> bool:
    """A TLS handshake with the CA's API listener completes (a bare TCP connect would leave a
    'TLS handshake error' line in its log)."""
    ctx = ssl.create_default_context(cafile=str(layout.org_tls_ca(org)))
    try:
        with socket.create_connection((org.host, org.ca.port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=org.host):
                return True
    except (OSError, ssl.SSLError):
        return False


def _errors(res: dict) -> str:
    return "; ".join(f"{e.get('message')} (code {e.get('code')})" for e in res.get("errors") or []) or str(res)


# ---- enrollment ---------------------------------------------------------------------------------

def _layout(config: ConsortiumConfig | None, run_root: Path | None) -> Layout:
    config = config or load_config(paths.DEFAULT_CONFIG)
    return Layout((run_root or paths.run_dir()).resolve(), config)


def enroll(org: str, name: str, role: str, *, config: ConsortiumConfig | None = None,
           run_root: Path | None = None, timeout: float = 15.0) -> Enrolled:
    """Register (if needed) and enroll ``name`` at ``org``'s CA with ``role``; write its MSP dir."""
    if role not in ROLES:
        raise EnrollError(f"bad role {role!r}: expected one of {', '.join(ROLES)}")
    layout = _layout(config, run_root)
    try:
        o = layout.config.org(org)
    except ConfigError:
        raise EnrollError(f"unknown org {org!r} (consortium members: "
                          f"{', '.join(x.name for x in layout.config.orgs)})") from None
    if not isinstance(name, str) or not _NAME.match(name):
        raise EnrollError(f"bad user name {name!r}: letters, digits, '.', '_' and '-', at most 64 "
                          "characters, starting with a letter or digit")
    eid = f"{name}@{o.domain}"
    msp = layout.user_msp(o, name)

    existing = _msp_cert(msp)
    if existing is None and msp.parent.exists():
        raise EnrollError(f"{msp.parent} exists but holds no certificate (signcerts/*.pem); remove it "
                          "or choose another name")
    if existing is not None:
        have = cert_role(existing.read_bytes())
        if have == role:
            return Enrolled(o.name, name, eid, role, msp, created=False, ca="")
        if have is None:
            raise EnrollError(f"{eid} already exists in {msp.parent} without a {ROLE_ATTR} "
                              "(an identity generated with the network); choose another name")
        raise EnrollError(f"{eid} is already enrolled with role {have!r}, not {role!r}; "
                          "choose another name")

    template = layout.user_msp(o, "User1")
    if not (template / "config.yaml").exists():
        raise EnrollError(f"{o.name}'s crypto material is missing ({template}); bring the network up "
                          "first: network/network.sh up")
    ca_id = o.ca_node_id
    if not _tls_reachable(layout, o):
        raise EnrollError(f"the CA of {o.name} ({ca_id}, {layout.ca_endpoint(o)}) is not running; "
                          "start the network: network/network.sh up")
    try:
        password = fabricca.admin_password(layout, o)
    except OSError:
        raise EnrollError(f"no bootstrap admin password for {ca_id} at {layout.ca_admin_secret(o)}; "
                          "is this the run dir of the running network? (FEDFABRIC_RUN_DIR / --run-dir)") from None

    import requests

    _, _, IdentityService, _ = _hfc()
    service = _service(layout, o, timeout)
    try:
        try:
            registrar = service.enroll(fabricca.BOOTSTRAP_ADMIN, password)
        except ValueError as exc:
            raise EnrollError(f"{ca_id} refused its bootstrap admin ({exc}); the password in "
                              f"{layout.ca_admin_secret(o)} does not match the CA's database") from None
        secret = secrets.token_urlsafe(24)
        found = IdentityService(service._ca_client).getOne(eid, registrar)
        if found.get("success"):
            attrs = {a.get("name"): a.get("value") for a in found["result"].get("attrs") or []}
            registered = attrs.get(ROLE_ATTR)
            if registered != role:
                raise EnrollError(f"{eid} is already registered at {ca_id} with role {registered!r}, "
                                  f"not {role!r}; choose another name")
            if found["result"].get("type") != IDENTITY_TYPE:
                raise EnrollError(f"{eid} is registered at {ca_id} as type "
                                  f"{found['result'].get('type')!r}, not {IDENTITY_TYPE!r}; choose another name")
            # registered before, but its MSP is gone: a new one-time secret (Fabric CA keeps the
            # enrollment count, so the limit is lifted; the secret is random and never stored)
            res = IdentityService(service._ca_client).update(eid, registrar, enrollmentSecret=secret,
                                                             maxEnrollments=-1)
            if not res.get("success"):
                raise EnrollError(f"{ca_id} refused to renew {eid}'s secret: {_errors(res)}")
        elif any(e.get("code") == _NOT_FOUND for e in found.get("errors") or []):
            try:
                registrar.register(eid, secret, role=IDENTITY_TYPE, affiliation=o.name, maxEnrollments=1,
                                   attrs=[{"name": ROLE_ATTR, "value": role, "ecert": True}])
            except ValueError as exc:
                raise EnrollError(f"{ca_id} refused to register {eid}: {exc}") from None
        else:
            raise EnrollError(f"{ca_id} could not look up {eid}: {_errors(found)}")
        try:
            user = service.enroll(eid, secret)
        except ValueError as exc:
            raise EnrollError(f"{ca_id} refused to enroll {eid}: {exc}") from None
    except requests.RequestException as exc:
        raise EnrollError(f"cannot talk to {ca_id} at {layout.ca_endpoint(o)}: {exc}") from None

    _check_issued(layout, o, eid, role, user.cert, user.caCert)
    write_client_msp(msp, template, user.cert, key_pem(user.private_key))
    return Enrolled(o.name, name, eid, role, msp, created=True, ca=ca_id)


def _check_issued(layout: Layout, org: PeerOrg, eid: str, role: str, cert_pem: bytes, chain_pem: bytes) -> None:
    """What the CA issued is what the org's MSP and the chaincode will accept."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    root = x509.load_pem_x509_certificate(layout.org_ca_cert(org).read_bytes())
    chain = x509.load_pem_x509_certificates(chain_pem) if chain_pem else []
    if cert.issuer != root.subject or root not in chain:
        raise EnrollError(f"{org.ca_node_id} is not signing with {org.name}'s CA ({layout.org_ca_cert(org)}): "
                          f"issuer {cert.issuer.rfc4514_string()}")
    ous = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if IDENTITY_TYPE not in ous or cert_role(cert_pem) != role:
        raise EnrollError(f"{org.ca_node_id} issued a certificate for {eid} without OU {IDENTITY_TYPE!r} "
                          f"and {ROLE_ATTR}={role} (OUs {ous}, role {cert_role(cert_pem)!r})")

