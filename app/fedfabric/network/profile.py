"""Connection profiles: one org's view of the network for clients outside this repository.

``write_profile(layout, "org1", "User1", out_dir)`` writes what the official Fabric clients and the
``peer`` CLI need to act as one identity, so none of them reads the run directory:

* ``connection-<org>.json`` and ``connection-<org>.yaml`` -- the common connection profile the Fabric
  SDKs read: ``name``, ``version``, ``client.organization``, ``channels`` (orderers, peers and their
  roles), ``organizations`` (``mspid``, ``peers``, ``certificateAuthorities``), ``orderers`` and
  ``peers`` (``url: grpcs://host:port``, ``tlsCACerts`` as inline ``pem`` and as a ``path`` under the
  output directory, ``grpcOptions`` with the TLS host name), ``certificateAuthorities`` (``url:
  https://…``, ``caName``, ``tlsCACerts``). Every org's peer is listed, so a client can gather the
  endorsements a multi-org policy asks for; only the profile's own org's CA is.
* ``identity-<user>.json`` -- the identity: MSP id, its certificate (path and PEM), the org CA
  certificate and the *path* of its private key, which stays where it is and is never copied (a key
  file readable by anyone but its owner is refused).
* ``msp/`` -- the identity's MSP for ``CORE_PEER_MSPCONFIGPATH`` (signcerts, cacerts, tlscacerts,
  NodeOUs ``config.yaml``) whose ``keystore/`` (0700) holds only a symbolic link to the key. (The
  ``peer`` CLI takes its BCCSP settings from core.yaml as one map, so ``CORE_PEER_BCCSP_SW_*``
  variables cannot point it elsewhere; a link is the way to reach the key without a copy.)
* ``tls/`` -- the TLS CA certificates the profile's ``path`` entries point at.

Nothing written here is secret (``msp/keystore``, which holds the link, is 0700 all the same). Paths in
the files are absolute.
"""

from __future__ import annotations

import json
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, PeerOrg
from .layout import Layout

PROFILE_VERSION = "1.0.0"
TIMEOUT_S = "300"       # the SDKs' client.connection.timeout values are seconds, as strings


class ProfileError(RuntimeError):
    """A profile cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class ProfileFiles:
    """What :func:`write_profile` wrote (and the key it points at)."""

    json: Path
    yaml: Path
    identity: Path
    msp_dir: Path
    certificate: Path
    private_key: Path       # the identity's key in the run directory: referenced, never copied


def _tls_entry(pem_file: Path, copy: Path) -> dict[str, str]:
    return {"pem": pem_file.read_text(), "path": str(copy)}


def _grpc_options(host_name: str) -> dict[str, str]:
    """The TLS server name under the spellings the SDKs read (Node/Java, Go, and gRPC's own)."""
    return {"ssl-target-name-override": host_name, "hostnameOverride": host_name,
            "grpc.ssl_target_name_override": host_name}


class _Dumper(yaml.SafeDumper):
    """PEM blocks as YAML literal blocks (``|``), the way hand-written profiles carry them."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style="|" if "\n" in s else None))


def tls_name(layout: Layout, pem: Path) -> str:
    """The profile's file name of an org's TLS CA certificate (``public/<org>/tlsca.pem``):
    ``tlsca.<org domain>-cert.pem``, as cryptogen names it."""
    return f"tlsca.{pem.parent.name}.{layout.config.domain}-cert.pem"


def connection_profile(layout: Layout, org: PeerOrg, tls_dir: Path) -> dict[str, Any]:
    """The common connection profile of ``org`` (dict); TLS ``path`` entries point into ``tls_dir``."""
    config = layout.config
    tls_file = lambda pem: tls_dir / tls_name(layout, pem)  # noqa: E731
    orderer_ca = layout.orderer_tls_ca
    orderers = {o.host_name: {"url": f"grpcs://{o.host}:{o.port}",
                              "tlsCACerts": _tls_entry(orderer_ca, tls_file(orderer_ca)),
                              "grpcOptions": _grpc_options(o.host_name)}
                for o in config.orderer_org.orderers}
    peers = {o.peer.host_name: {"url": f"grpcs://{layout.peer_endpoint(o)}",
                                "tlsCACerts": _tls_entry(layout.org_tls_ca(o), tls_file(layout.org_tls_ca(o))),
                                "grpcOptions": _grpc_options(o.peer.host_name)}
             for o in config.orgs}
    ca_tls = layout.org_tls_ca(org)
    cas = {org.ca.host_name: {"url": layout.ca_endpoint(org), "caName": org.ca_node_id,
                              "tlsCACerts": {"pem": [ca_tls.read_text()], "path": str(tls_file(ca_tls))},
                              "httpOptions": {"verify": True}}}
    organizations = {o.name: {"mspid": o.msp_id, "peers": [o.peer.host_name],
                              **({"certificateAuthorities": [o.ca.host_name]} if o == org else {})}
                     for o in config.orgs}
    roles = {"endorsingPeer": True, "chaincodeQuery": True, "ledgerQuery": True, "eventSource": True}
    return {
        "name": f"fedfabric-{org.name}",
        "version": PROFILE_VERSION,
        "description": f"fedfabric consortium, channel '{config.channel}', as seen by {org.name} ({org.msp_id})",
        "client": {"organization": org.name,
                   "connection": {"timeout": {"peer": {"endorser": TIMEOUT_S}, "orderer": TIMEOUT_S}}},
        "channels": {config.channel: {"orderers": list(orderers),
                                      "peers": {name: dict(roles) for name in peers}}},
        "organizations": organizations,
        "orderers": orderers,
        "peers": peers,
        "certificateAuthorities": cas,
    }


def _private_key(msp: Path) -> Path:
    """The identity's key file, refused when anyone but its owner can read or write it (not 0600 or
    stricter): a profile would hand its path to clients on a machine where it is already exposed."""
    keys = sorted(p for p in (msp / "keystore").iterdir() if p.is_file()) if (msp / "keystore").is_dir() else []
    if len(keys) != 1:
        raise ProfileError(f"expected exactly one private key in {msp / 'keystore'}, found {len(keys)}")
    mode = stat.S_IMODE(keys[0].stat().st_mode)
    if mode & 0o077:
        raise ProfileError(f"the private key {keys[0]} is mode {mode:04o}: group or others can reach it; "
                           f"run `chmod 600 {keys[0]}` first")
    return keys[0]


def _identity(org: PeerOrg, user: str, msp_out: Path, key: Path) -> dict[str, Any]:
    cert = msp_out / "signcerts" / "cert.pem"
    ca_certs = sorted((msp_out / "cacerts").glob("*.pem"))
    return {
        "name": user,
        "enrollmentId": f"{user}@{org.domain}",
        "organization": org.name,
        "mspId": org.msp_id,
        "type": "X.509",
        "certificate": {"path": str(cert), "pem": cert.read_text()},
        "caCertificate": {"path": str(ca_certs[0]) if ca_certs else None},
        "mspDir": str(msp_out),
        "privateKey": {"path": str(key)},
    }


def _msp(msp: Path, key: Path, out: Path) -> None:
    """signcerts (as cert.pem), cacerts, tlscacerts and config.yaml of ``msp``, and a keystore with a
    link to ``key``; replaces ``out`` whole."""
    certs = sorted((msp / "signcerts").glob("*.pem"))
    if not certs:
        raise ProfileError(f"no certificate in {msp / 'signcerts'}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "signcerts").mkdir(parents=True)
    shutil.copyfile(certs[0], tmp / "signcerts" / "cert.pem")
    for sub in ("cacerts", "tlscacerts"):
        if (msp / sub).is_dir():
            shutil.copytree(msp / sub, tmp / sub)
    if (msp / "config.yaml").exists():
        shutil.copyfile(msp / "config.yaml", tmp / "config.yaml")
    (tmp / "keystore").mkdir(mode=0o700)
    (tmp / "keystore").chmod(0o700)
    (tmp / "keystore" / key.name).symlink_to(key)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def write_profile(layout: Layout, org_name: str, user: str, out_dir: Path) -> ProfileFiles:
    """Write the connection profile of ``org_name`` for ``user`` into ``out_dir`` (see the module)."""
    try:
        org = layout.config.org(org_name)
    except ConfigError as exc:
        raise ProfileError(str(exc)) from None
    msp = layout.user_msp(org, user)
    if not msp.is_dir():
        raise ProfileError(f"no identity {user!r} in {org.name} ({msp} is missing): bring the network up "
                           f"(network/network.sh up) or enroll the user first "
                           f"(network/network.sh enroll --org {org.name} --name {user} --role ROLE)")
    key = _private_key(msp)
    tls_cas = [layout.orderer_tls_ca, *(layout.org_tls_ca(o) for o in layout.config.orgs)]
    missing = [p for p in tls_cas if not p.exists()]
    if missing:
        raise ProfileError(f"crypto material incomplete ({missing[0]} is missing); is {layout.root} the run "
                           "directory of the network? (--run-dir / FEDFABRIC_RUN_DIR)")
    out = out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True, mode=0o755)
    tls_dir = out / "tls"
    tls_dir.mkdir(exist_ok=True)
    for pem in tls_cas:
        shutil.copyfile(pem, tls_dir / tls_name(layout, pem))
    msp_out = out / "msp"
    _msp(msp, key, msp_out)
    profile = connection_profile(layout, org, tls_dir)
    files = ProfileFiles(json=out / f"connection-{org.name}.json", yaml=out / f"connection-{org.name}.yaml",
                         identity=out / f"identity-{user}.json", msp_dir=msp_out,
                         certificate=msp_out / "signcerts" / "cert.pem", private_key=key)
    files.json.write_text(json.dumps(profile, indent=2) + "\n")
    files.yaml.write_text(yaml.dump(profile, Dumper=_Dumper, sort_keys=False, width=200))
    files.identity.write_text(json.dumps(_identity(org, user, msp_out, key), indent=2) + "\n")
    return files
