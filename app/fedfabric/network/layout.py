"""Paths inside the run directory, derived from the configuration (cryptogen's layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import ConsortiumConfig, Orderer, PeerOrg


@dataclass(frozen=True)
class Layout:
    root: Path
    config: ConsortiumConfig

    # -- generated files -------------------------------------------------------------------
    @property
    def crypto(self) -> Path:
        return self.root / "crypto"

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

    def node_dir(self, node_id: str) -> Path:
        return self.root / "nodes" / node_id

    def log_file(self, node_id: str) -> Path:
        return self.root / "logs" / f"{node_id}.log"

    # -- orderer org -----------------------------------------------------------------------
    @property
    def orderer_org_dir(self) -> Path:
        return self.crypto / "ordererOrganizations" / self.config.orderer_org.domain

    def orderer_dir(self, o: Orderer) -> Path:
        return self.orderer_org_dir / "orderers" / o.host_name

    @property
    def orderer_tls_ca(self) -> Path:
        return self.orderer_org_dir / "tlsca" / f"tlsca.{self.config.orderer_org.domain}-cert.pem"

    @property
    def orderer_admin_dir(self) -> Path:
        return self.orderer_org_dir / "users" / f"Admin@{self.config.orderer_org.domain}"

    # -- peer orgs -------------------------------------------------------------------------
    def org_dir(self, org: PeerOrg) -> Path:
        return self.crypto / "peerOrganizations" / org.domain

    def peer_dir(self, org: PeerOrg) -> Path:
        return self.org_dir(org) / "peers" / org.peer.host_name

    def org_tls_ca(self, org: PeerOrg) -> Path:
        return self.org_dir(org) / "tlsca" / f"tlsca.{org.domain}-cert.pem"

    def user_dir(self, org: PeerOrg, user: str = "Admin") -> Path:
        return self.org_dir(org) / "users" / f"{user}@{org.domain}"

    def user_msp(self, org: PeerOrg, user: str = "Admin") -> Path:
        return self.user_dir(org, user) / "msp"

    # -- the org's Fabric CA server -----------------------------------------------------------
    def org_ca_cert(self, org: PeerOrg) -> Path:
        """The org's (cryptogen) CA certificate: the MSP's root, and the Fabric CA's signing cert."""
        return self.org_dir(org) / "ca" / f"ca.{org.domain}-cert.pem"

    def org_ca_key(self, org: PeerOrg) -> Path:
        return self.org_dir(org) / "ca" / "priv_sk"

    def ca_tls_dir(self, org: PeerOrg) -> Path:
        """server.crt/server.key of the Fabric CA's listeners, issued by the org's TLS CA."""
        return self.org_dir(org) / "fabric-ca" / "tls"

    def ca_home(self, org: PeerOrg) -> Path:
        """FABRIC_CA_SERVER_HOME: its config (0600, holds the bootstrap admin), database, idemix keys."""
        return self.node_dir(org.ca_node_id)

    # -- the org's training node ----------------------------------------------------------------
    def node_host_name(self, org: PeerOrg) -> str:
        return f"fl-node.{org.domain}"

    def node_tls_dir(self, org: PeerOrg) -> Path:
        """server.crt/server.key/ca.crt of the training node's exchange listener (and its client side),
        issued by the org's TLS CA."""
        return self.org_dir(org) / "training-node" / "tls"

    def node_endpoint(self, org: PeerOrg) -> str:
        return f"{self.config.host}:{org.node_port}"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    def ca_admin_secret(self, org: PeerOrg) -> Path:
        """The CA's bootstrap admin password (random per run dir, 0600)."""
        return self.secrets_dir / f"{org.ca_node_id}.admin-password"

    def ca_endpoint(self, org: PeerOrg) -> str:
        return f"https://{self.config.host}:{org.ca.port}"

    # -- what a client of an org dials -------------------------------------------------------
    def peer_endpoint(self, org: PeerOrg) -> str:
        return f"{self.config.host}:{org.peer.port}"

    def peer_tls_ca(self, org: PeerOrg) -> Path:
        return self.peer_dir(org) / "tls" / "ca.crt"
