"""Public org definitions: what an org shares with the consortium, and nothing else.

A definition is one JSON file an org writes from its own home (``network.sh org init``) and hands to
the others: its MSP (root CA and TLS root CA certificates, node OUs on), its admins' certificates,
its anchor peer, the endpoints of its peer, chaincode server, training node and Fabric CA, and the
consortium-file entry that places them (name, MSP id, address, ports). The orderer org's definition
carries its orderers' endpoints and TLS certificates (the Raft consenters' identities) instead.
There is no private key in it, and :func:`parse_definition` refuses one that holds any.

Everything a site needs about another org is read from its definition, unpacked under
``public/<org>/``: the channel's genesis block and every channel config update are built from those
directories, the peers and orderers are dialled with the TLS roots found there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .config import ConfigError, ConsortiumConfig, PeerOrg, load_config, parse_org
from .layout import Layout

FORMAT = "fedfabric.org-definition/1"
PEER_ORG, ORDERER_ORG = "peer-org", "orderer-org"
MAX_BYTES = 256 * 1024
NODE_OUS = ("client", "peer", "admin", "orderer")


class DefinitionError(ValueError):
    """An org definition is malformed, inconsistent, or not this consortium's; the message says why."""


@dataclass(frozen=True)
class Definition:
    """A parsed, checked org definition (``doc`` is the JSON document as shared)."""

    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["name"]

    @property
    def msp_id(self) -> str:
        return self.doc["msp_id"]

    def peer_org(self, config: ConsortiumConfig) -> PeerOrg:
        """The org as a consortium member (stake 0: stake is the consortium's to grant, not the org's)."""
        if self.kind != PEER_ORG:
            raise DefinitionError(f"{self.name}: an orderer org is not a peer org")
        try:
            return parse_org({**self.doc["org"], "stake": 0}, f"definition of {self.name}", config.domain,
                             config.host)
        except ConfigError as exc:
            raise DefinitionError(str(exc)) from None


# -- writing (the org's own side) ------------------------------------------------------------------

def _read(path: Path) -> str:
    return path.read_text()


def _msp_section(msp_dir: Path) -> dict[str, Any]:
    return {"cacerts": {p.name: _read(p) for p in sorted((msp_dir / "cacerts").glob("*.pem"))},
            "tlscacerts": {p.name: _read(p) for p in sorted((msp_dir / "tlscacerts").glob("*.pem"))},
            "node_ous": True}


def _admins(users_dir: Path, domain: str) -> list[str]:
    signcerts = users_dir / f"Admin@{domain}" / "msp" / "signcerts"
    return [_read(p) for p in sorted(signcerts.glob("*.pem"))]


def org_entry(org: PeerOrg) -> dict[str, Any]:
    """The org's consortium-file entry (without stake): where its nodes listen."""
    return {"name": org.name, "msp_id": org.msp_id, "host": org.host,
            "peer": {"name": org.peer.name, "port": org.peer.port, "chaincode_port": org.peer.chaincode_port,
                     "operations_port": org.peer.operations_port},
            "chaincode_server_port": org.chaincode_server_port, "node_port": org.node_port,
            "ca": {"name": org.ca.name, "port": org.ca.port, "operations_port": org.ca.operations_port}}


def peer_org_definition(layout: Layout, org: PeerOrg) -> dict[str, Any]:
    """The definition of ``org``, read from its home (certificates only)."""
    d = layout.org_dir(org)
    return {
        "format": FORMAT, "kind": PEER_ORG, "name": org.name, "msp_id": org.msp_id, "domain": org.domain,
        "org": org_entry(org),
        "msp": _msp_section(d / "msp"),
        "admins": _admins(d / "users", org.domain),
        "anchor_peers": [{"host": org.host, "port": org.peer.port}],
        "endpoints": {"peer": layout.peer_endpoint(org), "chaincode_server": f"{org.host}:{org.chaincode_server_port}",
                      "training_node": layout.node_endpoint(org), "ca": layout.ca_endpoint(org)},
    }


def orderer_org_definition(layout: Layout) -> dict[str, Any]:
    """The orderer org's definition, read from its home: MSP, admins, each orderer's endpoint and TLS
    certificate."""
    oo = layout.config.orderer_org
    d = layout.orderer_org_dir
    return {
        "format": FORMAT, "kind": ORDERER_ORG, "name": oo.name, "msp_id": oo.msp_id, "domain": oo.domain,
        "msp": _msp_section(d / "msp"),
        "admins": _admins(d / "users", oo.domain),
        "orderers": [{"name": o.name, "endpoint": f"{o.host}:{o.port}",
                      "tls_cert": _read(layout.orderer_dir(o) / "tls" / "server.crt")}
                     for o in oo.orderers],
    }


def write_definition(path: Path, doc: dict[str, Any]) -> Path:
    """Write a definition (public: 0644), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    tmp.replace(path)
    return path


# -- reading and checking (every other site) -------------------------------------------------------

def _cert(pem: Any, what: str) -> x509.Certificate:
    if not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
        raise DefinitionError(f"{what}: expected a PEM certificate")
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise DefinitionError(f"{what}: not a valid certificate ({exc})") from None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or cert.issuer != issuer.subject:
        return False
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        return False
    return True


def _roots(msp: Any, section: str, name: str) -> list[x509.Certificate]:
    certs = msp.get(section) if isinstance(msp, dict) else None
    if not isinstance(certs, dict) or not certs:
        raise DefinitionError(f"{name}: msp.{section} must name at least one certificate")
    out = []
    for fname, pem in sorted(certs.items()):
        if not isinstance(fname, str) or "/" in fname or not fname.endswith(".pem") or fname.startswith("."):
            raise DefinitionError(f"{name}: msp.{section}: bad file name {fname!r}")
        cert = _cert(pem, f"{name}: msp.{section}/{fname}")
        if not _is_ca(cert) or not _signed_by(cert, cert):
            raise DefinitionError(f"{name}: msp.{section}/{fname} is not a self-signed CA certificate")
        out.append(cert)
    return out


def _ou(cert: x509.Certificate) -> set[str]:
    return {a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)}


def parse_definition(raw: bytes | str, config: ConsortiumConfig) -> Definition:
    """A definition checked for this consortium: format, names under the consortium's domain, every
    certificate a valid PEM, CA certificates self-signed, admins (node OU ``admin``) and orderer TLS
    certificates issued by the org's CAs, and no private key anywhere."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    if len(text) > MAX_BYTES:
        raise DefinitionError(f"definition larger than {MAX_BYTES // 1024} KB")
    if "PRIVATE KEY" in text:
        raise DefinitionError("definition holds a private key: refused (an org shares certificates only)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DefinitionError(f"not an org definition (format must be {FORMAT!r})")
    kind, name, msp_id = doc.get("kind"), doc.get("name"), doc.get("msp_id")
    if kind not in (PEER_ORG, ORDERER_ORG):
        raise DefinitionError(f"kind must be {PEER_ORG!r} or {ORDERER_ORG!r}, got {kind!r}")
    if not isinstance(name, str) or not isinstance(msp_id, str):
        raise DefinitionError("name and msp_id must be strings")
    if doc.get("domain") != f"{name}.{config.domain}":
        raise DefinitionError(f"{name}: domain {doc.get('domain')!r} is not {name}.{config.domain} "
                              "(another consortium's org?)")
    ca = _roots(doc.get("msp"), "cacerts", name)[0]
    tlsca = _roots(doc.get("msp"), "tlscacerts", name)[0]
    admins = doc.get("admins")
    if not isinstance(admins, list) or not admins:
        raise DefinitionError(f"{name}: admins must list at least one certificate")
    for i, pem in enumerate(admins):
        cert = _cert(pem, f"{name}: admins[{i}]")
        if not _signed_by(cert, ca) or "admin" not in _ou(cert):
            raise DefinitionError(f"{name}: admins[{i}] is not an admin (node OU 'admin') issued by the org's CA")
    definition = Definition(doc)
    if kind == PEER_ORG:
        org = definition.peer_org(config)
        if (org.name, org.msp_id) != (name, msp_id):
            raise DefinitionError(f"{name}: its org entry names {org.name}/{org.msp_id}")
        _check_anchor(doc, org)
    else:
        _check_orderers(doc, config, tlsca)
    return definition


def _check_anchor(doc: dict[str, Any], org: PeerOrg) -> None:
    anchors = doc.get("anchor_peers")
    if anchors != [{"host": org.host, "port": org.peer.port}]:
        raise DefinitionError(f"{org.name}: anchor_peers must be its peer, [{{host: {org.host}, port: "
                              f"{org.peer.port}}}], got {anchors!r}")


def _check_orderers(doc: dict[str, Any], config: ConsortiumConfig, tlsca: x509.Certificate) -> None:
    oo = config.orderer_org
    if (doc["name"], doc["msp_id"]) != (oo.name, oo.msp_id):
        raise DefinitionError(f"{doc['name']}/{doc['msp_id']} is not this consortium's orderer org "
                              f"({oo.name}/{oo.msp_id})")
    listed = doc.get("orderers")
    want = {o.name: f"{o.host}:{o.port}" for o in oo.orderers}
    if not isinstance(listed, list) or {e.get("name") for e in listed if isinstance(e, dict)} != set(want):
        raise DefinitionError(f"{oo.name}: orderers must be {', '.join(want)}")
    for e in listed:
        if e.get("endpoint") != want[e["name"]]:
            raise DefinitionError(f"{e['name']}: endpoint {e.get('endpoint')!r}, the consortium file says "
                                  f"{want[e['name']]}")
        if not _signed_by(_cert(e.get("tls_cert"), f"{e['name']}: tls_cert"), tlsca):
            raise DefinitionError(f"{e['name']}: tls_cert is not issued by the orderer org's TLS CA")


def load_definition(path: Path, config: ConsortiumConfig) -> Definition:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return parse_definition(raw, config)
    except DefinitionError as exc:
        raise DefinitionError(f"{path}: {exc}") from None


# -- the site's collection of definitions ----------------------------------------------------------

NODE_OUS_CONFIG = "NodeOUs:\n  Enable: true\n" + "".join(
    f"  {ou.capitalize()}OUIdentifier:\n    Certificate: cacerts/{{ca}}\n    OrganizationalUnitIdentifier: {ou}\n"
    for ou in NODE_OUS)


def unpack(definition: Definition, target: Path) -> Path:
    """Write the definition's public files under ``target``: ``msp/`` (cacerts, tlscacerts, node OUs
    ``config.yaml``: what configtxgen reads), ``tlsca.pem`` and, for the orderer org, each orderer's TLS
    certificate under ``orderers/``. Returns ``target / "msp"``."""
    doc = definition.doc
    msp = target / "msp"
    for section in ("cacerts", "tlscacerts"):
        (msp / section).mkdir(parents=True, exist_ok=True)
        for fname, pem in doc["msp"][section].items():
            (msp / section / fname).write_text(pem)
    (msp / "config.yaml").write_text(NODE_OUS_CONFIG.format(ca=sorted(doc["msp"]["cacerts"])[0]))
    (target / "tlsca.pem").write_text(doc["msp"]["tlscacerts"][sorted(doc["msp"]["tlscacerts"])[0]])
    for e in doc.get("orderers", ()):
        (target / "orderers").mkdir(parents=True, exist_ok=True)
        (target / "orderers" / f"{e['name']}.crt").write_text(e["tls_cert"])
    return msp


def import_definition(layout: Layout, definition: Definition) -> Path:
    """Store a checked definition as ``public/<org>.json``, unpacked into ``public/<org>/`` (see
    :func:`unpack`); an org retired earlier is a member of this site's view again. Returns the file."""
    unpack(definition, layout.public_org_dir(definition.name))
    retired_file(layout, definition.name).unlink(missing_ok=True)
    return write_definition(layout.definition_file(definition.name), definition.doc)


def retired_file(layout: Layout, name: str) -> Path:
    return layout.public_dir / "retired" / f"{name}.json"


def retire(layout: Layout, name: str) -> None:
    """Mark org ``name`` as removed from the channel: this site's view of the consortium leaves it out
    (its definition is kept under ``public/retired/`` for the record)."""
    dest = retired_file(layout, name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = layout.definition_file(name)
    if src.exists():
        src.replace(dest)
    elif not dest.exists():
        dest.write_text("{}\n")


def collected(layout: Layout) -> dict[str, Definition]:
    """The definitions this site holds, by org name (checked again as they are read)."""
    out = {}
    if layout.public_dir.is_dir():
        for path in sorted(layout.public_dir.glob("*.json")):
            d = load_definition(path, layout.config)
            out[d.name] = d
    return out


def site_config(base: ConsortiumConfig, root: Path) -> ConsortiumConfig:
    """The consortium as a site sees it: the consortium file's orgs but those retired (removed from the
    channel by governance), then every org whose definition the site imported later (admitted by
    governance after the channel was created)."""
    layout = Layout(root, base)
    known = {o.name for o in base.orgs}
    extra = tuple(d.peer_org(base) for name, d in collected(layout).items()
                  if d.kind == PEER_ORG and name not in known)
    kept = tuple(o for o in base.orgs if not retired_file(layout, o.name).exists())
    return base.with_orgs(kept + extra) if extra or len(kept) < len(base.orgs) else base


def load_site_config(path: Path, root: Path) -> ConsortiumConfig:
    """:func:`site_config` of the consortium file ``path`` for the site in ``root``."""
    return site_config(load_config(path), Path(root).resolve())


def definition_bytes(layout: Layout, name: str) -> int:
    """How many bytes org ``name`` shares with the others: the size of its definition file."""
    return layout.definition_file(name).stat().st_size
