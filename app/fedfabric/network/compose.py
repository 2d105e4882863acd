"""Compose files: each org's Fabric nodes as containers on its own host, and all of them on one.

``network.sh compose --org ORG`` writes one file per org -- the orderer org's (its orderers) or a peer
org's (its peer and its Fabric CA) -- for the host that org runs on. Every service is the native node
spec of that org (``nodes.orderer_spec``, ``nodes.peer_spec``, ``ca.ca_spec``: the same environment,
ports, addresses and TLS material) with its paths moved into the container, the run directory at
:data:`CONTAINER_RUN`, and the peer image's own chaincode-as-a-service builder. Host networking keeps
every address the one in the consortium file -- the org's own host address, which is in its TLS
certificates, the anchor peers and the Raft consenters of the channel -- so the containers and the
native tools (``network.sh up`` joining the channel, ``deploy``) dial the same endpoints.

What a container may read is only what its node needs, all of it from its own org's home: its
MSP/TLS directory (read-only), its data directory (read-write: ledger, Fabric CA home), Fabric's node
configuration (``config/``, read-only) and, for the orderers, the orderer org's own public definition
(the admin endpoint's client root). Never another org's home, never the org's other identities: a
peer container cannot read the org's CA key or its admins' keys. Containers run as the run
directory's owner (``FEDFABRIC_UID``/``FEDFABRIC_GID``), so what they write stays owner-only, like
the native nodes' files, and ``network.sh down`` can remove it.

The chaincode server and the training node are not containers: they are fedfabric's own Python
processes, run from the checkout's virtualenv that every org host has anyway (``network.sh`` itself,
``org init``, ``fedfabric node``). ``network.sh up``/``deploy`` start and supervise the chaincode
server, with the package id only known once the package is installed, and restart it when a new
version is committed; a container would be a second manager of the same listener.

``docker-compose-fabric.yml`` at the top level is the single-machine aggregate: every org's services,
exactly as in their own files, rendered together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import ca as fabricca, nodes, paths
from .config import ConfigError, ConsortiumConfig
from .deploy import server_node_id
from .fabricbin import read_pin
from .layout import Layout
from .nodes import NodeSpec
from .private import private_dir

CONTAINER_RUN = "/fedfabric/run"
IMAGE_BUILDER = "/opt/hyperledger/ccaas_builder"
AGGREGATE = paths.REPO_ROOT / "docker-compose-fabric.yml"
# the containers run as the owner of the run directory (org homes 0700, keys 0600)
USER = ("${FEDFABRIC_UID:?set FEDFABRIC_UID and FEDFABRIC_GID to the run directory owner (id -u and id -g)}"
        ":${FEDFABRIC_GID:?set FEDFABRIC_GID to the run directory owner group (id -g)}")


class _ImageBinaries:
    """Stands in for a Fabric install when a node spec is built for a container: the image brings the
    binary (the spec's argv is not used), so no local build is needed to write a compose file."""

    def binary(self, name: str) -> Path:
        return Path("/usr/local/bin") / name


@dataclass(frozen=True)
class Mount:
    """A bind mount of a directory of the run directory, at the same place under :data:`CONTAINER_RUN`."""

    host: Path
    read_only: bool


def org_names(config: ConsortiumConfig) -> list[str]:
    """Every org a compose file can be written for: the orderer org, then the peer orgs."""
    return [config.orderer_org.name, *(o.name for o in config.orgs)]


def node_specs(config: ConsortiumConfig, layout: Layout, name: str) -> list[NodeSpec]:
    """The native node specs of org ``name`` that become its compose services: the orderer org's
    orderers, or a peer org's peer and Fabric CA."""
    fabric: Any = _ImageBinaries()
    if name == config.orderer_org.name:
        return [nodes.orderer_spec(fabric, config, layout, o) for o in config.orderer_org.orderers]
    org = config.org(name)
    return [nodes.peer_spec(fabric, config, layout, org), fabricca.ca_spec(fabric, config, layout, org)]


def mounts(config: ConsortiumConfig, layout: Layout, spec: NodeSpec) -> list[Mount]:
    """What the container of ``spec`` mounts: its own identity (read-only), its data (read-write) and
    Fabric's configuration or the orderer org's public definition where its environment names them."""
    if spec.kind == "orderer":
        o = next(o for o in config.orderer_org.orderers if o.name == spec.node_id)
        return [Mount(layout.orderer_dir(o), True), Mount(layout.orderer_data(o), False),
                Mount(layout.public_org_dir(config.orderer_org.name), True), Mount(layout.fabric_cfg, True)]
    org = config.org(spec.node_id.rsplit(".", 1)[-1])
    if spec.kind == "peer":
        return [Mount(layout.peer_dir(org), True), Mount(layout.peer_data(org), False),
                Mount(layout.fabric_cfg, True)]
    if spec.kind == "ca":
        return [Mount(layout.org_ca_cert(org).parent, True), Mount(layout.ca_tls_dir(org), True),
                Mount(layout.ca_home(org), False)]
    raise ValueError(f"{spec.node_id}: no container for a {spec.kind} node")


def container_path(layout: Layout, host: Path) -> str:
    """Where the run directory's ``host`` path is inside a container."""
    return f"{CONTAINER_RUN}/{host.relative_to(layout.root).as_posix()}"


def host_source(path: Path, base_dir: Path) -> str:
    """A bind mount's source as written in a compose file in ``base_dir`` (compose resolves relative
    sources against the file's directory): relative when ``path`` is under ``base_dir`` or its parent,
    absolute otherwise."""
    rel = os.path.relpath(path, base_dir)
    if rel.startswith("../.."):
        return str(path)
    return rel if rel.startswith("..") else f"./{rel}"


def _environment(layout: Layout, spec: NodeSpec) -> dict[str, str]:
    host_run = str(layout.root)
    env = {}
    for key, value in sorted(spec.env.items()):
        value = value.replace(host_run, CONTAINER_RUN)
        if key == "CORE_CHAINCODE_EXTERNALBUILDERS":
            value = (f"[{{name: ccaas_builder, path: {IMAGE_BUILDER}, "
                     "propagateEnvironment: [CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG]}]")
        env[key] = value
    return env


def service(config: ConsortiumConfig, layout: Layout, spec: NodeSpec, base_dir: Path) -> dict[str, Any]:
    """The compose service of one native node spec."""
    pin = read_pin()
    image, command = {
        "orderer": (f"hyperledger/fabric-orderer:{pin['FABRIC_RELEASE']}", "orderer"),
        "peer": (f"hyperledger/fabric-peer:{pin['FABRIC_RELEASE']}", "peer node start"),
        "ca": (f"hyperledger/fabric-ca:{pin['FABRIC_CA_RELEASE']}", "fabric-ca-server start"),
    }[spec.kind]
    volumes = [{"type": "bind", "source": host_source(m.host, base_dir), "target": container_path(layout, m.host),
                "read_only": m.read_only, "bind": {"create_host_path": False}}
               for m in mounts(config, layout, spec)]
    return {
        "image": image,
        "container_name": f"fedfabric-{spec.node_id}",
        "network_mode": "host",
        "user": USER,
        "environment": _environment(layout, spec),
        "command": command,
        "volumes": volumes,
        "restart": "unless-stopped",
    }


def services(config: ConsortiumConfig, layout: Layout, name: str, base_dir: Path) -> dict[str, dict[str, Any]]:
    """Org ``name``'s services, by node id."""
    return {s.node_id: service(config, layout, s, base_dir) for s in node_specs(config, layout, name)}


def _native(config: ConsortiumConfig, name: str) -> dict[str, Any]:
    """What org ``name`` runs on its host outside this file (an ``x-`` extension: compose ignores it)."""
    if name == config.orderer_org.name:
        return {"org": name, "msp_id": config.orderer_org.msp_id, "host": config.orderer_org.host}
    org = config.org(name)
    return {"org": name, "msp_id": org.msp_id, "host": org.host,
            "native": {server_node_id(config.chaincode.name, org): f"{org.host}:{org.chaincode_server_port}",
                       f"node.{org.name}": f"{org.host}:{org.node_port}"}}


def org_document(config: ConsortiumConfig, layout: Layout, name: str, base_dir: Path) -> dict[str, Any]:
    """The compose document of org ``name`` for its own host."""
    if name not in org_names(config):
        raise ConfigError(f"no org named {name!r}; known: {', '.join(org_names(config))}")
    return {"name": f"fedfabric-{name}", "x-fedfabric": _native(config, name),
            "services": services(config, layout, name, base_dir)}


def consortium_document(config: ConsortiumConfig, layout: Layout, base_dir: Path) -> dict[str, Any]:
    """Every org's services together (one machine holding the whole consortium)."""
    out: dict[str, dict[str, Any]] = {}
    for name in org_names(config):
        out.update(services(config, layout, name, base_dir))
    return {"name": "fedfabric", "services": out}


# -- rendering ---------------------------------------------------------------------------------

def default_dir(layout: Layout) -> Path:
    """Where ``network.sh compose`` writes the per-org files: the site's own run directory."""
    return layout.root / "compose"


def _shown(path: Path) -> str:
    """``path`` as the usage hints show it: relative to the checkout (where network.sh runs) if inside."""
    path = Path(os.path.abspath(path))
    return str(path.relative_to(paths.REPO_ROOT)) if path.is_relative_to(paths.REPO_ROOT) else str(path)


def _tool_args(config: ConsortiumConfig, layout: Layout) -> str:
    """``--config``/``--run-dir`` as network.sh needs them to act on the same site (none: the defaults)."""
    args = ""
    if config.source is not None and Path(config.source).resolve() != paths.DEFAULT_CONFIG.resolve():
        args += f" --config {_shown(config.source)}"
    if layout.root.resolve() != (paths.REPO_ROOT / "run").resolve():
        args += f" --run-dir {_shown(layout.root)}"
    return args


def _source(config: ConsortiumConfig) -> str:
    return _shown(config.source) if config.source is not None else "its consortium file"


def _steps(steps: list[tuple[str, list[str]]]) -> str:
    """Numbered steps, each a sentence and its commands."""
    out = ""
    for i, (what, cmds) in enumerate(steps, 1):
        lines = what.split("\n")
        out += f"#  {i}. {lines[0]}\n" + "".join(f"#     {line}\n" for line in lines[1:])
        out += "".join(f"#       {cmd}\n" for cmd in cmds)
    return out


def org_header(config: ConsortiumConfig, layout: Layout, name: str, out_file: Path) -> str:
    """The usage hint of org ``name``'s file: what it runs, and the commands on that org's host."""
    ns = f"network/network.sh{_tool_args(config, layout)}"
    dc = f"docker compose -f {_shown(out_file)}"
    ids = ", ".join(s.node_id for s in node_specs(config, layout, name))
    containers = ["export FEDFABRIC_UID=$(id -u) FEDFABRIC_GID=$(id -g)", f"{dc} up -d"]
    out_dir = Path(os.path.abspath(out_file)).parent
    out = "" if out_dir == Path(os.path.abspath(default_dir(layout))) else f" --out {_shown(out_dir)}"
    if name == config.orderer_org.name:
        oo = config.orderer_org
        host, what, native = oo.host, f"{name} ({oo.msp_id}): its Raft orderers {ids}", ""
        steps = [
            ("its keys and definition (once), sent to every org; the peer orgs' definitions imported:",
             [f"{ns} org init --orderer", f"{ns} org definition --orderer --out {name}.json",
              f"{ns} org import {' '.join(f'{o.name}.json' for o in config.orgs)}"]),
            ("Fabric's node config and the channel's block 0 (from the definitions), this file (it creates\n"
             "the directories it mounts), the containers:",
             [f"{ns} generate", f"{ns} compose --orderer{out}", *containers]),
            ("join the orderers to the channel (osnadmin; the containers are left alone):",
             [f"{ns} up --no-deploy"]),
        ]
    else:
        org = config.org(name)
        host, what = org.host, f"{name} ({org.msp_id}): its peer and its Fabric CA, {ids}"
        native = (f"# Its chaincode server ({org.host}:{org.chaincode_server_port}) and training node "
                  f"({org.host}:{org.node_port}) are Python processes\n"
                  "# of this checkout, not containers: `network.sh up`/`deploy` start and supervise the chaincode\n"
                  "# server (its id is the installed package's), `fedfabric node` is the training node.\n")
        steps = [
            ("its keys and definition (once), sent to every org; the others' definitions imported:",
             [f"{ns} org init --org {name}", f"{ns} org definition --org {name} --out {name}.json",
              f"{ns} org import {' '.join(f'{n}.json' for n in org_names(config) if n != name)}"]),
            ("Fabric's node config, this file (it creates the directories it mounts), the containers:",
             [f"{ns} generate", f"{ns} compose --org {name}{out}", *containers]),
            ("once the orderers joined the channel: join the peer (block 0 from an orderer), approve and\n"
             "deploy the chaincode, start its server (the containers are left alone):",
             [f"{ns} up"]),
        ]
    return (f"# GENERATED by `network/network.sh compose` from {_source(config)} -- do not edit by hand.\n"
            "#\n"
            f"# {what}, as containers on its own host, {host}:\n"
            f"# host networking, listening on {host} (the address in their TLS certificates and the channel).\n"
            "# Each container mounts only its own node's directories of this org's home and runs as their owner.\n"
            f"{native}"
            "#\n"
            f"# On {name}'s host, in the fedfabric checkout:\n"
            + _steps(steps) +
            f"#  To stop: {dc} down && {ns} down\n")


def aggregate_header(config: ConsortiumConfig, layout: Layout, out_file: Path) -> str:
    ns = f"network/network.sh{_tool_args(config, layout)}"
    dc = f"docker compose -f {_shown(out_file)}"
    output = "" if Path(os.path.abspath(out_file)) == AGGREGATE else f" --output {_shown(out_file)}"
    return (f"# GENERATED by `network/network.sh compose` from {_source(config)} -- do not edit by hand.\n"
            "#\n"
            "# The whole consortium's Fabric nodes on one Docker host: every org's services exactly as in its\n"
            "# own file for its own host (`network.sh compose --org ORG` writes <run dir>/compose/ORG.yml),\n"
            "# rendered together. Each container mounts only its own node's directories of its org's home.\n"
            "# The chaincode servers and training nodes are Python processes of this checkout (`network.sh up`\n"
            "# starts and supervises the chaincode servers). `network.sh up` alone runs everything as native\n"
            "# processes, without Docker.\n"
            "#\n"
            + _steps([("every org's home and definition, the genesis block; this file again (it creates the\n"
                       "directories it mounts); the orderers, peers and CAs as containers:",
                       [f"{ns} generate", f"{ns} compose{output}",
                        "export FEDFABRIC_UID=$(id -u) FEDFABRIC_GID=$(id -g)", f"{dc} up -d"]),
                      ("join the channel, deploy the chaincode (nodes already healthy are left alone):",
                       [f"{ns} up"])]) +
            f"#  To stop: {dc} down && {ns} down\n")


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, width=200)


def render_org(config: ConsortiumConfig, layout: Layout, name: str, out_file: Path) -> str:
    """Org ``name``'s compose file, to be written at ``out_file``."""
    doc = org_document(config, layout, name, Path(os.path.abspath(out_file)).parent)
    return org_header(config, layout, name, out_file) + _dump(doc)


def render_consortium(config: ConsortiumConfig, layout: Layout, out_file: Path = AGGREGATE) -> str:
    """The single-machine aggregate, to be written at ``out_file``."""
    doc = consortium_document(config, layout, Path(os.path.abspath(out_file)).parent)
    return aggregate_header(config, layout, out_file) + _dump(doc)


def render(net: Any, out_file: Path = AGGREGATE) -> str:
    """The aggregate of a site (a :class:`~fedfabric.network.manager.SiteManager`) holding every org."""
    return render_consortium(net.config, net.layout, out_file)


# -- writing (network.sh compose) ----------------------------------------------------------------

def data_dirs(config: ConsortiumConfig, layout: Layout, name: str) -> list[Path]:
    """The directories org ``name``'s containers write to (they must exist: compose is told not to
    create a missing bind source, which would be root's)."""
    return [m.host for s in node_specs(config, layout, name) for m in mounts(config, layout, s) if not m.read_only]


def prepare(config: ConsortiumConfig, layout: Layout, name: str) -> list[Path]:
    """Create org ``name``'s data directories (0700) when its home exists; the bind sources still
    missing after that (none once ``network.sh generate`` ran on this site)."""
    if layout.home(name).is_dir():
        for d in data_dirs(config, layout, name):
            private_dir(d)
    return sorted({m.host for s in node_specs(config, layout, name) for m in mounts(config, layout, s)
                   if not m.host.is_dir()})


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
