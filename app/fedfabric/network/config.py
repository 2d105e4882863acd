"""Parse and validate ``consortium.yaml``: the single source of truth for the network."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """The consortium file is malformed; the message names the offending field."""


_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_MSP = re.compile(r"^[A-Za-z][A-Za-z0-9.-]{0,62}$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9.-]{0,248}$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024 * 1024}


@dataclass(frozen=True)
class Batch:
    timeout_ms: int
    max_message_count: int
    absolute_max_bytes: int
    preferred_max_bytes: int


class _OrgNode:
    """A node named within its org's domain (``peer0.org1.fedfabric.local``), listening on its org's
    host address."""

    name: str
    org_domain: str
    host: str

    @property
    def host_name(self) -> str:
        return f"{self.name}.{self.org_domain}"


@dataclass(frozen=True)
class Orderer(_OrgNode):
    name: str
    port: int
    admin_port: int
    operations_port: int
    org_domain: str
    host: str = "127.0.0.1"

    @property
    def ports(self) -> dict[str, int]:
        return {"listen": self.port, "admin": self.admin_port, "operations": self.operations_port}


@dataclass(frozen=True)
class Peer(_OrgNode):
    name: str
    port: int
    chaincode_port: int
    operations_port: int
    org_domain: str
    host: str = "127.0.0.1"

    @property
    def ports(self) -> dict[str, int]:
        return {"listen": self.port, "chaincode": self.chaincode_port,
                "operations": self.operations_port}


@dataclass(frozen=True)
class CertificateAuthority(_OrgNode):
    """The org's Fabric CA server: enrolls the org's users; signs with the org's (cryptogen) CA key."""

    name: str
    port: int
    operations_port: int
    org_domain: str
    host: str = "127.0.0.1"

    @property
    def ports(self) -> dict[str, int]:
        return {"listen": self.port, "operations": self.operations_port}


@dataclass(frozen=True)
class OrdererOrg:
    name: str
    msp_id: str
    domain: str
    consensus: str
    orderers: tuple[Orderer, ...]
    host: str = "127.0.0.1"        # where its orderers listen and are reached


@dataclass(frozen=True)
class PeerOrg:
    name: str
    msp_id: str
    domain: str
    stake: int
    peer: Peer
    chaincode_server_port: int
    ca: CertificateAuthority
    node_port: int                 # the org's training node: serves its update payloads to other members (mTLS)
    host: str = "127.0.0.1"        # where all its nodes listen and are reached (its own machine)

    @property
    def peer_node_id(self) -> str:
        return f"{self.peer.name}.{self.name}"

    @property
    def ca_node_id(self) -> str:
        return f"{self.ca.name}.{self.name}"


@dataclass(frozen=True)
class Chaincode:
    name: str
    version: str
    endorsement_quorum: Fraction
    updates_block_to_live: int     # blocks after which members' update payloads and seeds are purged
    max_clock_skew_s: int = 30     # endorsers refuse writes whose timestamp is further than this from their clock


@dataclass(frozen=True)
class ConsortiumConfig:
    channel: str
    domain: str
    host: str
    batch: Batch
    orderer_org: OrdererOrg
    orgs: tuple[PeerOrg, ...]
    chaincode: Chaincode
    source: Path | None = field(default=None, compare=False)

    def org(self, name: str) -> PeerOrg:
        """The peer org called ``name`` (``org1``) or with that MSP id (``Org1MSP``)."""
        for o in self.orgs:
            if name in (o.name, o.msp_id):
                return o
        raise ConfigError(f"no org named {name!r}; known: {', '.join(o.name for o in self.orgs)}")

    @property
    def total_stake(self) -> int:
        return sum(o.stake for o in self.orgs)

    def with_orgs(self, orgs: tuple[PeerOrg, ...]) -> "ConsortiumConfig":
        """This consortium with ``orgs`` as its peer orgs (ports, names and MSP ids checked again)."""
        config = replace(self, orgs=tuple(orgs))
        check_unique(config)
        return config

    def node_host(self, node_id: str) -> str:
        """The address the node ``node_id`` (a key of :meth:`node_ports`) listens on."""
        if node_id in {o.name for o in self.orderer_org.orderers}:
            return self.orderer_org.host
        return self.org(node_id.rsplit(".", 1)[-1]).host

    def node_ports(self) -> dict[str, dict[str, int]]:
        """Every node's listeners, keyed by node id (``orderer1``, ``peer0.org1``, ``cc.org1``,
        ``ca.org1``)."""
        out: dict[str, dict[str, int]] = {}
        for o in self.orderer_org.orderers:
            out[o.name] = o.ports
        for org in self.orgs:
            out[org.peer_node_id] = org.peer.ports
            out[f"cc.{org.name}"] = {"chaincode-server": org.chaincode_server_port}
            out[org.ca_node_id] = org.ca.ports
            out[f"node.{org.name}"] = {"training-node": org.node_port}
        return out


def _map(value: Any, where: str, default: dict | None = None) -> dict[str, Any]:
    """``value`` as a mapping; ``default`` when it is absent (None)."""
    if value is None and default is not None:
        return default
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    """How a wrong value is shown in an error: its YAML-ish type and a short repr."""
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
             float: "a number", type(None): "nothing"}
    text = repr(value)
    return f"{names.get(type(value), type(value).__name__)} ({text[:40] + '...' if len(text) > 40 else text})"


def _req(d: Any, key: str, where: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_kind(d)}")
    if key not in d or d[key] is None:
        raise ConfigError(f"{where}.{key}: missing")
    return d[key]


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{where}: {value} is outside [{lo}, {hi}]")
    return value


def _port(value: Any, where: str) -> int:
    return _int(value, where, 1024, 65535)


def _address(value: Any, where: str) -> str:
    """An IP address nodes listen on and are dialled at (``localhost`` means 127.0.0.1); a wildcard,
    multicast address or host name is refused: it goes into certificates and the channel config."""
    if value == "localhost":
        return "127.0.0.1"
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected an IP address, got {_kind(value)}")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an IP address (e.g. 127.0.0.1 or 10.0.0.11)") from None
    if ip.is_unspecified or ip.is_multicast:
        raise ConfigError(f"{where}: {value!r} cannot be dialled; give the address this org's nodes "
                          "listen on and are reached at")
    return str(ip)


def _name(value: Any, where: str, pattern: re.Pattern[str] = _NAME) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(f"{where}: invalid name {value!r} (expected {pattern.pattern})")
    return value


def _text(value: Any, where: str) -> str:
    """A scalar written as text (YAML may read ``version: 1.0`` as a number)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {_kind(value)}")
    return str(value)


def _size(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return _int(value, where, 1, 2**31 - 1)
    m = _SIZE.match(value) if isinstance(value, str) else None
    if not m:
        raise ConfigError(f"{where}: invalid size {value!r} (e.g. '2 MB', '512 KB', 1048576)")
    return _int(int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()], where, 1, 2**31 - 1)


def _fraction(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: invalid fraction {value!r} (e.g. '2/3')")
    try:
        f = Fraction(str(value))
    except (ValueError, ZeroDivisionError) as exc:
        raise ConfigError(f"{where}: invalid fraction {value!r} (e.g. '2/3')") from exc
    if not 0 < f <= 1:
        raise ConfigError(f"{where}: {value} must be in (0, 1]")
    return f


def parse_config(raw: Any, source: Path | None = None) -> ConsortiumConfig:
    """Validate a parsed YAML document and build the typed configuration.

    Every structural error (a mapping, list or scalar of the wrong type, a missing field) raises
    :class:`ConfigError` naming the field, never a ``TypeError``/``AttributeError``.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"consortium file: top level must be a mapping, got {_kind(raw)}")
    channel = _name(raw.get("channel", "fl"), "channel", _CHANNEL)
    domain = _name(raw.get("domain", "fedfabric.local"), "domain", _DOMAIN)
    host = _address(raw.get("host", "127.0.0.1"), "host")
    batch = _batch(_map(raw.get("batch"), "batch", {}))
    orderer_org = _orderer_org(_map(_req(raw, "orderer_org", "consortium"), "orderer_org"), domain, host)
    orgs_raw = _list(_req(raw, "orgs", "consortium"), "orgs")
    orgs = tuple(parse_org(o, f"orgs[{i}]", domain, host) for i, o in enumerate(orgs_raw))
    if sum(o.stake for o in orgs) <= 0:
        raise ConfigError("orgs: total stake must be positive")
    chaincode = _chaincode(_map(raw.get("chaincode"), "chaincode", {}))
    config = ConsortiumConfig(channel=channel, domain=domain, host=host, batch=batch,
                              orderer_org=orderer_org, orgs=orgs, chaincode=chaincode,
                              source=source)
    check_unique(config)
    return config


def _batch(b: dict[str, Any]) -> Batch:
    batch = Batch(
        timeout_ms=_int(b.get("timeout_ms", 200), "batch.timeout_ms", 10, 2000),
        max_message_count=_int(b.get("max_message_count", 10), "batch.max_message_count", 1, 10000),
        absolute_max_bytes=_size(b.get("absolute_max_bytes", "99 MB"), "batch.absolute_max_bytes"),
        preferred_max_bytes=_size(b.get("preferred_max_bytes", "2 MB"), "batch.preferred_max_bytes"),
    )
    if batch.preferred_max_bytes > batch.absolute_max_bytes:
        raise ConfigError("batch.preferred_max_bytes: larger than batch.absolute_max_bytes")
    return batch


def _orderer_org(oo: dict[str, Any], domain: str, default_host: str) -> OrdererOrg:
    oo_name = _name(oo.get("name", "orderer"), "orderer_org.name")
    oo_domain = f"{oo_name}.{domain}"
    host = _address(oo.get("host", default_host), "orderer_org.host")
    consensus = oo.get("consensus", "etcdraft")
    if consensus != "etcdraft":
        raise ConfigError(f"orderer_org.consensus: {consensus!r} not supported (etcdraft)")
    orderers_raw = _list(_req(oo, "orderers", "orderer_org"), "orderer_org.orderers")
    return OrdererOrg(
        name=oo_name,
        msp_id=_name(_req(oo, "msp_id", "orderer_org"), "orderer_org.msp_id", _MSP),
        domain=oo_domain, consensus=consensus, host=host,
        orderers=tuple(_orderer(o, f"orderer_org.orderers[{i}]", oo_domain, host)
                       for i, o in enumerate(orderers_raw)),
    )


def _orderer(o: Any, w: str, org_domain: str, host: str) -> Orderer:
    o = _map(o, w)
    return Orderer(
        name=_name(_req(o, "name", w), f"{w}.name"),
        port=_port(_req(o, "port", w), f"{w}.port"),
        admin_port=_port(_req(o, "admin_port", w), f"{w}.admin_port"),
        operations_port=_port(_req(o, "operations_port", w), f"{w}.operations_port"),
        org_domain=org_domain, host=host,
    )


def parse_org(o: Any, w: str, domain: str, default_host: str = "127.0.0.1") -> PeerOrg:
    """One peer org entry (``orgs[i]`` of a consortium file, or the ``org`` of an org definition)."""
    o = _map(o, w)
    name = _name(_req(o, "name", w), f"{w}.name")
    host = _address(o.get("host", default_host), f"{w}.host")
    p = _map(_req(o, "peer", w), f"{w}.peer")
    ca = _req(o, "ca", w)
    if not isinstance(ca, dict):
        raise ConfigError(f"{w}.ca: expected a mapping (port, operations_port), got {_kind(ca)}")
    org_domain = f"{name}.{domain}"
    org = PeerOrg(
        name=name,
        msp_id=_name(_req(o, "msp_id", w), f"{w}.msp_id", _MSP),
        domain=org_domain,
        stake=_int(_req(o, "stake", w), f"{w}.stake", 0, 10**12),
        peer=Peer(
            name=_name(p.get("name", "peer0"), f"{w}.peer.name"),
            port=_port(_req(p, "port", f"{w}.peer"), f"{w}.peer.port"),
            chaincode_port=_port(_req(p, "chaincode_port", f"{w}.peer"), f"{w}.peer.chaincode_port"),
            operations_port=_port(_req(p, "operations_port", f"{w}.peer"), f"{w}.peer.operations_port"),
            org_domain=org_domain, host=host,
        ),
        chaincode_server_port=_port(_req(o, "chaincode_server_port", w), f"{w}.chaincode_server_port"),
        ca=CertificateAuthority(
            name=_name(ca.get("name", "ca"), f"{w}.ca.name"),
            port=_port(_req(ca, "port", f"{w}.ca"), f"{w}.ca.port"),
            operations_port=_port(_req(ca, "operations_port", f"{w}.ca"), f"{w}.ca.operations_port"),
            org_domain=org_domain, host=host,
        ),
        node_port=_port(_req(o, "node_port", w), f"{w}.node_port"),
        host=host,
    )
    if org.ca.name in (org.peer.name, "cc"):
        raise ConfigError(f"{w}.ca.name: {org.ca.name!r} is taken by the org's "
                          f"{'peer' if org.ca.name == org.peer.name else 'chaincode server'}")
    return org


def _chaincode(cc: dict[str, Any]) -> Chaincode:
    return Chaincode(
        name=_name(cc.get("name", "fedfabric"), "chaincode.name"),
        version=_text(cc.get("version", "1.0"), "chaincode.version"),
        endorsement_quorum=_fraction(cc.get("endorsement_quorum", "2/3"), "chaincode.endorsement_quorum"),
        updates_block_to_live=_int(cc.get("updates_block_to_live", 20), "chaincode.updates_block_to_live",
                                   1, 10**9),
        max_clock_skew_s=_int(cc.get("max_clock_skew_s", 30), "chaincode.max_clock_skew_s", 1, 3600),
    )


def check_unique(config: ConsortiumConfig) -> None:
    """Refuse two listeners on one address and port, and duplicate names or MSP ids."""
    seen_ports: dict[tuple[str, int], str] = {}
    for node, ports in config.node_ports().items():
        host = config.node_host(node)
        for kind, port in ports.items():
            if (host, port) in seen_ports:
                raise ConfigError(f"{node}.{kind}: port {port} already used by {seen_ports[host, port]}")
            seen_ports[host, port] = f"{node}.{kind}"
    for what, values in (
        ("orderer name", [o.name for o in config.orderer_org.orderers]),
        ("org name", [o.name for o in config.orgs]),
        ("msp_id", [config.orderer_org.msp_id] + [o.msp_id for o in config.orgs]),
    ):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ConfigError(f"duplicate {what}: {', '.join(dupes)}")


def load_config(path: str | Path) -> ConsortiumConfig:
    """Read and validate a consortium file; errors name the file and the field."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read consortium file ({exc.strerror})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    try:
        return parse_config(raw, source=p.resolve())
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
