"""Paths inside a run directory, derived from the configuration.

A run directory is one *site*: the machine (or network namespace) of one or more orgs. Every org
the site holds has its own home, ``orgs/<org>/`` (0700), and nothing outside that home ever holds
one of its private keys:

    orgs/<org>/crypto/       its MSP tree (cryptogen's layout: CA and TLS CA key pairs, peers, users)
    orgs/<org>/secrets/      its Fabric CA's bootstrap admin password
    orgs/<org>/nodes/<id>/   its nodes' data: peer and orderer ledgers, the Fabric CA's home
    orgs/<org>/chaincode/    its chaincode servers' TLS material and package
    orgs/<org>/definition.json   its public org definition (certificates and endpoints only)

What is shared is public: ``public/<org>.json`` (every member's definition, this site's own included)
unpacked into ``public/<org>/`` (MSP directory, TLS CA certificate), the channel's genesis block,
Fabric's own sample configuration, logs and the site's process state. On one machine
(``network.sh up``) one site holds every org; on a real deployment each org's machine is a site
holding just that org.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import ConsortiumConfig, Orderer, PeerOrg


@dataclass(frozen=True)
class Layout:
    root: Path
    config: ConsortiumConfig

    # -- the site's shared, public files ----------------------------------------------------------
    @property
    def fabric_cfg(self) -> Path:
        """FABRIC_CFG_PATH for every node and CLI call: core.yaml, orderer.yaml, configtx.yaml."""
        return self.root / "config"

    @property
    def genesis_block(self) -> Path:
        return self.root / "channel" / f"{self.config.channel}.block"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def log_file(self, node_id: str) -> Path:
        return self.root / "logs" / f"{node_id}.log"

    @property
    def public_dir(self) -> Path:
        """The org definitions this site collected (its own included), each unpacked beside its file."""
        return self.root / "public"

    def definition_file(self, name: str) -> Path:
        return self.public_dir / f"{name}.json"

    def public_org_dir(self, name: str) -> Path:
        """``msp/`` (cacerts, tlscacerts, config.yaml) and ``tlsca.pem`` of one org's definition."""
        return self.public_dir / name

    def public_msp(self, name: str) -> Path:
        return self.public_org_dir(name) / "msp"

    # -- org homes ------------------------------------------------------------------------------
    def home(self, name: str) -> Path:
        """The home of the org called ``name`` (a peer org or the orderer org) on this site."""
        return self.root / "orgs" / name

    def own_definition(self, name: str) -> Path:
        return self.home(name) / "definition.json"

    def node_dir(self, owner: str, node_id: str) -> Path:
        """Data of one node of the org ``owner`` (ledger, Fabric CA home), inside that org's home."""
        return self.home(owner) / "nodes" / node_id

    # -- orderer org -----------------------------------------------------------------------
    @property
    def orderer_home(self) -> Path:
        return self.home(self.config.orderer_org.name)

    @property
    def orderer_org_dir(self) -> Path:
        return self.orderer_home / "crypto" / "ordererOrganizations" / self.config.orderer_org.domain

    def orderer_dir(self, o: Orderer) -> Path:
        return self.orderer_org_dir / "orderers" / o.host_name

    def orderer_data(self, o: Orderer) -> Path:
        return self.node_dir(self.config.orderer_org.name, o.name)

    @property
    def orderer_tls_ca(self) -> Path:
        """The orderer org's TLS CA certificate, from its public definition (what every org dials with)."""
        return self.public_org_dir(self.config.orderer_org.name) / "tlsca.pem"

    def consenter_cert(self, o: Orderer) -> Path:
        """An orderer's TLS certificate as its org's definition publishes it (Raft consenter identity)."""
        return self.public_org_dir(self.config.orderer_org.name) / "orderers" / f"{o.name}.crt"

    @property
    def orderer_admin_dir(self) -> Path:
        return self.orderer_org_dir / "users" / f"Admin@{self.config.orderer_org.domain}"

    # -- peer orgs -------------------------------------------------------------------------
    def org_home(self, org: PeerOrg) -> Path:
        return self.home(org.name)

    def org_dir(self, org: PeerOrg) -> Path:
        return self.org_home(org) / "crypto" / "peerOrganizations" / org.domain

    def peer_dir(self, org: PeerOrg) -> Path:
        return self.org_dir(org) / "peers" / org.peer.host_name

    def peer_data(self, org: PeerOrg) -> Path:
        return self.node_dir(org.name, org.peer_node_id)

    def org_tlsca_dir(self, org: PeerOrg) -> Path:
        """The org's own TLS CA: certificate and private key (its home only)."""
        return self.org_dir(org) / "tlsca"

    def org_tls_ca(self, org: PeerOrg) -> Path:
        """The org's TLS CA certificate, from its public definition (what the other orgs trust)."""
        return self.public_org_dir(org.name) / "tlsca.pem"

    def user_dir(self, org: PeerOrg, user: str = "Admin") -> Path:
        return self.org_dir(org) / "users" / f"{user}@{org.domain}"

    def user_msp(self, org: PeerOrg, user: str = "Admin") -> Path:
        return self.user_dir(org, user) / "msp"

    # -- the org's Fabric CA server -----------------------------------------------------------
    def org_ca_cert(self, org: PeerOrg) -> Path:
        """The org's CA certificate: the MSP's root, and the Fabric CA's signing cert."""
        return self.org_dir(org) / "ca" / f"ca.{org.domain}-cert.pem"

    def org_ca_key(self, org: PeerOrg) -> Path:
        return self.org_dir(org) / "ca" / "priv_sk"

    def ca_tls_dir(self, org: PeerOrg) -> Path:
        """server.crt/server.key of the Fabric CA's listeners, issued by the org's TLS CA."""
        return self.org_dir(org) / "fabric-ca" / "tls"

    def ca_home(self, org: PeerOrg) -> Path:
        """FABRIC_CA_SERVER_HOME: its config (0600, holds the bootstrap admin), database, idemix keys."""
        return self.node_dir(org.name, org.ca_node_id)

    # -- the org's training node ----------------------------------------------------------------
    def node_host_name(self, org: PeerOrg) -> str:
        return f"fl-node.{org.domain}"

    def node_tls_dir(self, org: PeerOrg) -> Path:
        """server.crt/server.key/ca.crt of the training node's exchange listener (and its client side),
        issued by the org's TLS CA."""
        return self.org_dir(org) / "training-node" / "tls"

    def node_endpoint(self, org: PeerOrg) -> str:
        return f"{org.host}:{org.node_port}"

    def secrets_dir(self, org: PeerOrg) -> Path:
        return self.org_home(org) / "secrets"

    def ca_admin_secret(self, org: PeerOrg) -> Path:
        """The CA's bootstrap admin password (random per org home, 0600)."""
        return self.secrets_dir(org) / f"{org.ca_node_id}.admin-password"

    def ca_endpoint(self, org: PeerOrg) -> str:
        return f"https://{org.host}:{org.ca.port}"

    def chaincode_dir(self, org: PeerOrg, name: str) -> Path:
        """TLS material and package of the org's server for chaincode ``name``."""
        return self.org_home(org) / "chaincode" / name

    # -- what a client of an org dials -------------------------------------------------------
    def peer_endpoint(self, org: PeerOrg) -> str:
        return f"{org.host}:{org.peer.port}"

    def peer_tls_ca(self, org: PeerOrg) -> Path:
        """The root a client checks the org's peer against (its TLS CA, from its definition)."""
        return self.org_tls_ca(org)
