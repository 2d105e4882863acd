"""Fabric chaincode lifecycle, one org admin at a time.

Packages are installed and queried with the ``peer lifecycle chaincode`` CLI. A definition -- approved
for an org, checked for commit readiness, committed -- goes to the ``_lifecycle`` system chaincode
through the admin's own peer's Gateway: its endorsement policy travels as SignaturePolicyEnvelope bytes
(``policydsl``), so a policy text longer than one command-line argument (128 KiB) is no obstacle.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from fabric_protos.common import policies_pb2
from fabric_protos.peer import collection_pb2, policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2

from ..ledger import Contract, GatewayError
from . import policydsl
from .channel import peer_admin_env
from .config import ConsortiumConfig, PeerOrg
from .fabricbin import FabricBinaryError, FabricInstall
from .gateways import open_gateway
from .layout import Layout

LIFECYCLE = "_lifecycle"
ESCC, VSCC = "escc", "vscc"          # Fabric's default endorsement and validation plugins
# The Gateway's answer while it does not know a peer of every org asked to endorse yet (discovery by
# gossip, seconds after the peers join): the commit is tried again until PEERS_KNOWN_WAIT_S.
NO_PEERS_YET = re.compile(r"failed to find any endorsing peers for org\(s\)")
PEERS_KNOWN_WAIT_S = 60.0


class LifecycleError(RuntimeError):
    """``_lifecycle`` refused or could not be reached: the function, the org and the Gateway's error
    (transaction id, the peers that refused and why)."""


def _peer_cli(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
              args: list[str], what: str, timeout: float = 120) -> str:
    return fabric.run("peer", ["lifecycle", "chaincode", *args], env=peer_admin_env(config, layout, org),
                      timeout=timeout, what=f"{what} ({org.name})")


def package_id(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
               package: Path) -> str:
    out = _peer_cli(fabric, config, layout, org, ["calculatepackageid", str(package)],
                    "calculatepackageid")
    return out.strip().splitlines()[-1].strip()


def installed_ids(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> set[str]:
    out = _peer_cli(fabric, config, layout, org, ["queryinstalled", "-O", "json"], "queryinstalled")
    data = json.loads(out[out.index("{"):]) if "{" in out else {}
    return {c["package_id"] for c in data.get("installed_chaincodes", [])}


def install(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
            package: Path) -> None:
    _peer_cli(fabric, config, layout, org, ["install", str(package)], "chaincode install", timeout=300)


def committed(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg,
              name: str) -> dict | None:
    """The committed definition (sequence, version, validation parameter, collections) or None."""
    try:
        out = _peer_cli(fabric, config, layout, org, ["querycommitted", "--channelID", config.channel,
                                                      "--name", name, "-O", "json"], "querycommitted")
    except FabricBinaryError as exc:
        if "404" in str(exc) or "not found" in str(exc):
            return None
        raise
    return json.loads(out[out.index("{"):])


def _collections(collections: Sequence[dict]) -> collection_pb2.CollectionConfigPackage:
    """The collection definitions (``--collections-config`` JSON: name, policy, requiredPeerCount,
    maxPeerCount, blockToLive, memberOnlyRead, memberOnlyWrite, optional endorsementPolicy) as protos."""
    out = []
    for c in collections:
        static = collection_pb2.StaticCollectionConfig(
            name=c["name"],
            member_orgs_policy=collection_pb2.CollectionPolicyConfig(signature_policy=_envelope(c["policy"])),
            required_peer_count=int(c.get("requiredPeerCount", 0)), maximum_peer_count=int(c.get("maxPeerCount", 0)),
            block_to_live=int(c.get("blockToLive", 0)), member_only_read=bool(c.get("memberOnlyRead", False)),
            member_only_write=bool(c.get("memberOnlyWrite", False)))
        ep = c.get("endorsementPolicy")
        if ep:
            static.endorsement_policy.CopyFrom(
                policy_pb2.ApplicationPolicy(signature_policy=_envelope(ep["signaturePolicy"]))
                if "signaturePolicy" in ep else
                policy_pb2.ApplicationPolicy(channel_config_policy_reference=ep["channelConfigPolicy"]))
        out.append(collection_pb2.CollectionConfig(static_collection_config=static))
    return collection_pb2.CollectionConfigPackage(config=out)


def _envelope(text: str) -> policies_pb2.SignaturePolicyEnvelope:
    env = policies_pb2.SignaturePolicyEnvelope()
    env.ParseFromString(policydsl.envelope(text))
    return env


def _definition_fields(name: str, version: str, sequence: int, policy: str, collections: Sequence[dict]) -> dict:
    """The fields a definition's approve, readiness check and commit share (the CLI's defaults: Fabric's
    escc and vscc, no init required)."""
    validation = policy_pb2.ApplicationPolicy(signature_policy=_envelope(policy))
    fields = dict(sequence=sequence, name=name, version=version, endorsement_plugin=ESCC, validation_plugin=VSCC,
                  validation_parameter=validation.SerializeToString(deterministic=True), init_required=False)
    if collections:
        fields["collections"] = _collections(collections)
    return fields


@contextmanager
def _lifecycle_contract(layout: Layout, org: PeerOrg) -> Iterator[Contract]:
    """``_lifecycle`` on the channel through ``org``'s own peer, as the org's admin."""
    with open_gateway(layout, org, "Admin") as gw:
        yield gw.get_network(layout.config.channel).get_contract(LIFECYCLE)


def _refused(function: str, org: PeerOrg, exc: GatewayError) -> LifecycleError:
    tx = f" (transaction {exc.tx_id})" if exc.tx_id else ""
    return LifecycleError(f"{function} as {org.name}'s admin failed{tx}: {exc}")


# Fabric's answer to re-approving, for the next sequence, exactly what the org already approved
# (core/chaincode/lifecycle: "attempted to redefine uncommitted sequence (N) for namespace X with
# unchanged content"): the approval it asks for is in place.
UNCHANGED_APPROVAL = re.compile(r"attempted to redefine uncommitted sequence \(\d+\) for namespace \S+ "
                                r"with unchanged content")


# Fabric's answer to approving, at the committed sequence, a definition other than the committed one
# (core/chaincode/lifecycle: "attempted to redefine the current committed sequence (N) for namespace X
# with different parameters"): the definition changed, a new sequence is needed.
DIFFERENT_COMMITTED = re.compile(r"attempted to redefine the current committed sequence \(\d+\) for namespace "
                                 r"\S+ with different parameters")


def approve(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg, *, name: str,
            version: str, sequence: int, policy: str, pkg_id: str, collections: Sequence[dict] = ()) -> bool:
    """Approve the definition for ``org`` (its admin, endorsed by its own peer, committed); True when
    approved now, False when the org had already approved exactly this definition and package (Fabric
    refuses the repeat as 'unchanged content')."""
    args = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs(
        **_definition_fields(name, version, sequence, policy, collections),
        source=lifecycle_pb2.ChaincodeSource(local_package=lifecycle_pb2.ChaincodeSource.Local(package_id=pkg_id)))
    try:
        with _lifecycle_contract(layout, org) as lc:
            lc.submit("ApproveChaincodeDefinitionForMyOrg", [args.SerializeToString(deterministic=True)],
                      endorsing_orgs=[org.msp_id])
    except GatewayError as exc:
        if UNCHANGED_APPROVAL.search(str(exc)):
            return False
        raise _refused("approveformyorg", org, exc) from None
    return True


def _json(out: str) -> dict:
    """The first JSON object in a CLI's output (log lines may come before or after it)."""
    if "{" not in out:
        return {}
    return json.JSONDecoder().raw_decode(out[out.index("{"):])[0]


def approved(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg, name: str,
             sequence: int) -> dict | None:
    """``queryapproved``: what ``org`` approved for ``name`` at ``sequence``, None if nothing."""
    try:
        out = _peer_cli(fabric, config, layout, org,
                        ["queryapproved", "--channelID", config.channel, "--name", name,
                         "--sequence", str(sequence), "-O", "json"], "queryapproved")
    except FabricBinaryError as exc:
        if "could not fetch approved chaincode definition" in str(exc):
            return None
        raise
    return _json(out)


def approved_package_id(definition: dict | None) -> str | None:
    """The package id in a ``queryapproved`` answer (``source.Type.LocalPackage.package_id``)."""
    if not definition:
        return None
    local = definition.get("source", {}).get("Type", {}).get("LocalPackage", {})
    return local.get("package_id") or None


def commit_readiness(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg, *,
                     name: str, version: str, sequence: int, policy: str,
                     collections: Sequence[dict] = ()) -> dict[str, bool]:
    """Which orgs (MSP id -> bool) approved exactly this definition (version, sequence, policy,
    collections; package ids are each org's own and not compared), asked of ``org``'s peer."""
    args = lifecycle_pb2.CheckCommitReadinessArgs(**_definition_fields(name, version, sequence, policy, collections))
    try:
        with _lifecycle_contract(layout, org) as lc:
            raw = lc.evaluate("CheckCommitReadiness", [args.SerializeToString(deterministic=True)])
    except GatewayError as exc:
        raise _refused("checkcommitreadiness", org, exc) from None
    result = lifecycle_pb2.CheckCommitReadinessResult()
    result.ParseFromString(raw)
    return {msp: bool(ok) for msp, ok in sorted(result.approvals.items())}


def commit(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, *, committer: PeerOrg,
           endorsers: list[PeerOrg], name: str, version: str, sequence: int, policy: str,
           collections: Sequence[dict] = ()) -> None:
    """Commit the definition as ``committer``'s admin, endorsed by a peer of each of ``endorsers`` (orgs
    that approved it: enough to meet the channel's LifecycleEndorsement policy); returns once committed."""
    args = lifecycle_pb2.CommitChaincodeDefinitionArgs(**_definition_fields(name, version, sequence, policy,
                                                                            collections))
    deadline = time.monotonic() + PEERS_KNOWN_WAIT_S
    with _lifecycle_contract(layout, committer) as lc:
        while True:
            try:
                lc.submit("CommitChaincodeDefinition", [args.SerializeToString(deterministic=True)],
                          endorsing_orgs=[o.msp_id for o in endorsers])
                return
            except GatewayError as exc:
                # a network just up: the Gateway learns the other orgs' peers by gossip, within seconds
                if not NO_PEERS_YET.search(str(exc)) or time.monotonic() > deadline:
                    raise _refused("chaincode commit", committer, exc) from None
            time.sleep(0.5)
