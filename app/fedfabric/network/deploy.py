"""Deploy a chaincode as a service: package, install, approve, commit, start its servers.

One chaincode server per org (each org runs its own code, on its own port); each org's package
points its peer at its own server, so each org approves its own package id.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import ccmaterial, lifecycle, paths
from .config import ConsortiumConfig, PeerOrg
from .fabricbin import FabricInstall
from .layout import Layout
from .nodes import NodeSpec
from fedfabric_cc.policy import compile_policy
from fedfabric_cc.state import UPDATES_COLLECTION



@dataclass(frozen=True)
class ChaincodeDeployment:
    """What to deploy. ``command`` starts one chaincode server (it reads CHAINCODE_* env vars)."""

    name: str
    version: str
    command: tuple[str, ...]
    port_offset: int = 0                       # server port = org.chaincode_server_port + offset
    policy: str | None = None                  # default: stake-weighted quorum from the config
    collections: tuple[dict, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=())

    def port(self, org: PeerOrg) -> int:
        return org.chaincode_server_port + self.port_offset

    def endorsement_policy(self, config: ConsortiumConfig) -> str:
        if self.policy:
            return self.policy
        q = config.chaincode.endorsement_quorum
        stakes = {o.msp_id: o.stake for o in config.orgs}
        return compile_policy(stakes, q.numerator, q.denominator)["policy"]

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> "ChaincodeDeployment":
        return ChaincodeDeployment(name=d["name"], version=d["version"], command=tuple(d["command"]),
                                   port_offset=d.get("port_offset", 0), policy=d.get("policy"),
                                   collections=tuple(d.get("collections", ())),
                                   env=tuple(tuple(x) for x in d.get("env", ())))


def members_collection(config: ConsortiumConfig, name: str, block_to_live: int) -> dict:
    """A private data collection of every member org (members only read and write)."""
    members = ",".join(f"'{o.msp_id}.member'" for o in config.orgs)
    # maxPeerCount 0: endorsers push nothing during endorsement; the other peers pull at commit
    return {"name": name, "policy": f"OR({members})", "requiredPeerCount": 0, "maxPeerCount": 0,
            "blockToLive": block_to_live, "memberOnlyRead": True, "memberOnlyWrite": True}


def source_digest() -> str:
    """SHA-256 over the Python sources the chaincode server runs (its packages ``fedfabric_cc``,
    ``fedfabric_protocol`` and ``fabshim``; the contract imports nothing from the app): a change restarts
    the servers on the next deploy, though the ccaas package itself stays the same."""
    h = hashlib.sha256()
    root = paths.REPO_ROOT / "chaincode"
    files = [f for pkg in ("fedfabric_cc", "fedfabric_protocol", "fabshim") for f in sorted((root / pkg).rglob("*.py"))]
    for f in files:
        h.update(str(f.relative_to(paths.REPO_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def product_deployment(config: ConsortiumConfig) -> ChaincodeDeployment:
    """The consortium contract from ``chaincode/fedfabric_cc``, as configured in consortium.yaml."""
    return ChaincodeDeployment(
        name=config.chaincode.name, version=config.chaincode.version,
        command=(sys.executable, "-m", "fedfabric_cc"),
        env=(("FEDFABRIC_CC_SOURCE", source_digest()),
             ("FEDFABRIC_MAX_CLOCK_SKEW_S", str(config.chaincode.max_clock_skew_s))),
        collections=(members_collection(config, UPDATES_COLLECTION, config.chaincode.updates_block_to_live),))


def cc_dir(layout: Layout, name: str, org: PeerOrg) -> Path:
    return layout.chaincode_dir(org, name)


def server_node_id(name: str, org: PeerOrg) -> str:
    return f"cc-{name}.{org.name}"


def prepare_package(config: ConsortiumConfig, layout: Layout, dep: ChaincodeDeployment,
                    org: PeerOrg) -> tuple[Path, ccmaterial.CCTls]:
    d = cc_dir(layout, dep.name, org)
    tls = ccmaterial.ensure_tls(d / "tls", org.domain, org.host)
    pkg = ccmaterial.write_package(d / f"{dep.name}.tar.gz", f"{dep.name}_{dep.version}",
                                   f"{org.host}:{dep.port(org)}", tls)
    return pkg, tls


def definition_fingerprint(dep: ChaincodeDeployment, policy: str, package_ids: dict[str, str]) -> str:
    doc = {"version": dep.version, "policy": policy, "collections": list(dep.collections),
           "packages": package_ids}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def server_spec(config: ConsortiumConfig, layout: Layout, dep: ChaincodeDeployment, org: PeerOrg,
                package_id: str) -> NodeSpec:
    tls = ccmaterial.CCTls(cc_dir(layout, dep.name, org) / "tls")
    node_id = server_node_id(dep.name, org)
    env = {
        "CHAINCODE_ID": package_id,
        "CHAINCODE_SERVER_ADDRESS": f"{org.host}:{dep.port(org)}",
        "CHAINCODE_TLS_CERT": str(tls.server_cert),
        "CHAINCODE_TLS_KEY": str(tls.server_key),
        "CHAINCODE_TLS_CLIENT_CACERT": str(tls.ca),
        "CHAINCODE_MSP_ID": org.msp_id,
        "PYTHONPATH": f"{paths.REPO_ROOT / 'app'}:{paths.REPO_ROOT / 'chaincode'}:{paths.REPO_ROOT}",
        "PYTHONUNBUFFERED": "1",
        **dict(dep.env),
    }
    argv = [sys.executable, "-m", "fedfabric.network.supervise", "--", *dep.command]
    return NodeSpec(node_id=node_id, kind="chaincode", argv=argv, env=env,
                    ports={"chaincode-server": dep.port(org)}, tls_ca=tls.ca,
                    cwd=cc_dir(layout, dep.name, org), host=org.host,
                    extra={"client_cert": str(tls.client_cert), "client_key": str(tls.client_key)})


def run_lifecycle(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, dep: ChaincodeDeployment,
                  package_ids: dict[str, str], previous_fingerprint: str | None,
                  report: Callable[[str], None] | None = None,
                  local: list[PeerOrg] | None = None) -> tuple[int, str, bool]:
    """Approve (for this site's orgs ``local``, default every org) and commit a definition. Returns
    (sequence, fingerprint, changed).

    A site whose orgs have not approved the definition already committed on the channel (an org
    admitted later, or another site committed it first) approves that one, at its sequence, when it
    is what this site would approve; otherwise, or when the site's own definition changed, the next
    sequence is approved and committed once a majority of the channel's orgs approved it (Fabric's
    LifecycleEndorsement) -- until then the site reports whom it waits for. Orgs that already approved
    this definition and package for the next sequence (a deploy that failed half-way) are not asked
    again: Fabric refuses an unchanged re-approval."""
    report = report or (lambda _msg: None)
    local = list(config.orgs) if local is None else local
    policy = dep.endorsement_policy(config)
    fingerprint = definition_fingerprint(dep, policy, package_ids)
    current = lifecycle.committed(fabric, config, layout, local[0], dep.name)
    sequence = int(current["sequence"]) if current else 0
    if current and previous_fingerprint == fingerprint:
        return sequence, fingerprint, False
    definition = dict(name=dep.name, version=dep.version, sequence=sequence, policy=policy,
                      collections=dep.collections)
    if current and _join_committed(fabric, config, layout, definition, package_ids, current, local, report):
        return sequence, fingerprint, True
    definition["sequence"] = sequence = sequence + 1
    pending = pending_approvals(fabric, config, layout, dep.name, definition, package_ids, local)
    for org in local:
        if org not in pending:
            report(f"{org.name} already approved {dep.name!r} sequence {sequence}: not asked again")
        elif not lifecycle.approve(fabric, config, layout, org, pkg_id=package_ids[org.name], **definition):
            report(f"{org.name} had already approved {dep.name!r} sequence {sequence} (unchanged content)")
    ready = lifecycle.commit_readiness(fabric, config, layout, local[0], **definition)
    approvers = [o for o in config.orgs if ready.get(o.msp_id)]
    if 2 * len(approvers) <= len(ready):
        waiting = ", ".join(sorted(m for m, ok in ready.items() if not ok))
        report(f"{dep.name!r} sequence {sequence} approved by {len(approvers)} of {len(ready)} orgs: not "
               f"committed yet (a majority must approve; waiting for {waiting})")
        return sequence, fingerprint, True
    lifecycle.commit(fabric, config, layout, committer=local[0], endorsers=approvers, **definition)
    return sequence, fingerprint, True


def _join_committed(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, definition: dict,
                    package_ids: dict[str, str], current: dict, local: list[PeerOrg],
                    report: Callable[[str], None]) -> bool:
    """Approve the committed definition for the site's orgs that have not; False (nothing approved)
    when it is not what the site would approve."""
    missing = [o for o in local if not current.get("approvals", {}).get(o.msp_id)]
    if not missing:
        return False
    for org in missing:
        try:
            lifecycle.approve(fabric, config, layout, org, pkg_id=package_ids[org.name], **definition)
        except lifecycle.LifecycleError as exc:
            if lifecycle.DIFFERENT_COMMITTED.search(str(exc)):
                return False
            raise
        report(f"{org.name} approved the committed {definition['name']!r} sequence {definition['sequence']}")
    return True


def pending_approvals(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, name: str,
                      definition: dict, package_ids: dict[str, str],
                      local: list[PeerOrg] | None = None) -> list[PeerOrg]:
    """The site's orgs (``local``, default all) whose approval of ``definition`` (checkcommitreadiness)
    with their own package (queryapproved) is not in place yet."""
    local = list(config.orgs) if local is None else local
    ready = lifecycle.commit_readiness(fabric, config, layout, local[0], **definition)
    pending = []
    for org in local:
        if ready.get(org.msp_id):
            got = lifecycle.approved(fabric, config, layout, org, name, definition["sequence"])
            if lifecycle.approved_package_id(got) == package_ids[org.name]:
                continue
        pending.append(org)
    return pending
