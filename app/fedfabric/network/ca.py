"""Each peer org's Fabric CA (``fabric-ca-server``): TLS certificate, bootstrap admin, config, node spec.

One server per org, on the org's address with TLS on both listeners (the REST API and operations
``/healthz``). Its signing CA *is* the org's cryptogen CA (certificate and key from its home), so
every certificate it issues chains to the root in the org's MSP; its TLS certificate is issued by
the org's TLS CA, like the peer's. Fabric CA writes the registered identity type into the
certificate's OU (type ``client`` -> ``OU=client``, which the MSP's NodeOUs classify as a client),
followed by the affiliation (here: the org's name), and puts attributes registered with ``ecert``
into the attribute extension (OID 1.2.3.4.5.6.7.8.1) that the chaincode reads roles from.

The bootstrap admin's password is random per org home, stored 0600 under ``orgs/<org>/secrets/`` and
in the server's config file (0600, in a 0700 home); it is passed neither on a command line nor in an
environment variable, and Fabric CA leaves ``pass`` lines out of the configuration it logs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .config import ConsortiumConfig, PeerOrg
from .fabricbin import FabricInstall
from .layout import Layout
from .nodes import NodeSpec
from .private import private_dir as _private_dir, write_private

BOOTSTRAP_ADMIN = "admin"
CONFIG_FILE = "fabric-ca-server-config.yaml"
SERVER_BINARY = "fabric-ca-server"


def admin_password(layout: Layout, org: PeerOrg) -> str:
    """The bootstrap admin's password of ``org``'s CA (raises FileNotFoundError before ``generate``)."""
    return layout.ca_admin_secret(org).read_text().strip()


def server_config(org: PeerOrg, password: str) -> dict[str, Any]:
    """What goes into the server's config file; listeners, TLS and CA files come from the environment
    (see :func:`ca_spec`) so the docker-compose file can move the paths."""
    return {
        "registry": {
            "maxenrollments": -1,
            "identities": [{
                "name": BOOTSTRAP_ADMIN, "pass": password, "type": "client", "affiliation": "",
                "attrs": {"hf.Registrar.Roles": "*", "hf.Registrar.DelegateRoles": "*",
                          "hf.Registrar.Attributes": "*", "hf.Revoker": True, "hf.GenCRL": True,
                          "hf.AffiliationMgr": True, "hf.IntermediateCA": False},
            }],
        },
        "affiliations": {org.name: []},
        "db": {"type": "sqlite3", "datasource": "fabric-ca-server.db"},
        "signing": {
            "default": {"usage": ["digital signature"], "expiry": "8760h"},
            "profiles": {"tls": {"usage": ["signing", "key encipherment", "server auth", "client auth",
                                           "key agreement"], "expiry": "8760h"}},
        },
        "cfg": {"identities": {"passwordattempts": 10}},
    }


def issue_tls_cert(layout: Layout, org: PeerOrg, tls_dir: Path, host_name: str) -> None:
    """``tls_dir``/server.crt, server.key and ca.crt from the org's own TLS CA: server and client auth,
    SANs the org's address, 127.0.0.1, localhost and ``host_name`` (the Fabric CA's listeners, the
    training node's)."""
    if (tls_dir / "server.crt").exists() and (tls_dir / "server.key").exists():
        return
    tlsca_dir = layout.org_tlsca_dir(org)
    ca_pem = (tlsca_dir / f"tlsca.{org.domain}-cert.pem").read_bytes()
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key((tlsca_dir / "priv_sk").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
        x509.NameAttribute(NameOID.COMMON_NAME, host_name),
    ])
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    not_before = max(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5), ca_cert.not_valid_before_utc)
    sans = [*(x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys((org.host, "127.0.0.1"))),
            x509.DNSName("localhost"), x509.DNSName(host_name)]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(ca_cert.not_valid_after_utc)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    write_private(tls_dir / "server.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tls_dir / "ca.crt").write_bytes(ca_pem)
    (tls_dir / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_ca_material(layout: Layout, org: PeerOrg) -> None:
    """In the org's home: TLS certificates of its Fabric CA and training node, the bootstrap admin
    password (once), the server config file."""
    secret = layout.ca_admin_secret(org)
    if not secret.exists():
        write_private(secret, (secrets.token_urlsafe(32) + "\n").encode())
    issue_tls_cert(layout, org, layout.ca_tls_dir(org), org.ca.host_name)
    issue_tls_cert(layout, org, layout.node_tls_dir(org), layout.node_host_name(org))
    home = layout.ca_home(org)
    _private_dir(home)
    text = ("# GENERATED by fedfabric (network.sh org init); holds the bootstrap admin's "
            "password: keep it 0600.\n"
            + yaml.safe_dump(server_config(org, admin_password(layout, org)), sort_keys=False))
    cfg = home / CONFIG_FILE
    if not cfg.exists() or cfg.read_text() != text:
        write_private(cfg, text.encode())


def ca_spec(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> NodeSpec:
    tls = layout.ca_tls_dir(org)
    host = org.host
    cert, key = str(tls / "server.crt"), str(tls / "server.key")
    env = {
        "FABRIC_CA_SERVER_HOME": str(layout.ca_home(org)),
        "FABRIC_CA_SERVER_ADDRESS": host,
        "FABRIC_CA_SERVER_PORT": str(org.ca.port),
        "FABRIC_CA_SERVER_CA_NAME": org.ca_node_id,
        "FABRIC_CA_SERVER_CA_CERTFILE": str(layout.org_ca_cert(org)),
        "FABRIC_CA_SERVER_CA_KEYFILE": str(layout.org_ca_key(org)),
        "FABRIC_CA_SERVER_TLS_ENABLED": "true",
        "FABRIC_CA_SERVER_TLS_CERTFILE": cert,
        "FABRIC_CA_SERVER_TLS_KEYFILE": key,
        "FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS": f"{host}:{org.ca.operations_port}",
        "FABRIC_CA_SERVER_OPERATIONS_TLS_ENABLED": "true",
        "FABRIC_CA_SERVER_OPERATIONS_TLS_CERTFILE": cert,
        "FABRIC_CA_SERVER_OPERATIONS_TLS_KEYFILE": key,
        "FABRIC_CA_SERVER_OPERATIONS_TLS_CLIENTCERTREQUIRED": "false",
        "FABRIC_CA_SERVER_METRICS_PROVIDER": "prometheus",
    }
    return NodeSpec(node_id=org.ca_node_id, kind="ca", argv=[str(fabric.binary(SERVER_BINARY)), "start"],
                    env=env, ports=org.ca.ports,
                    health_url=f"https://{host}:{org.ca.operations_port}/healthz",
                    metrics_url=f"https://{host}:{org.ca.operations_port}/metrics",
                    tls_ca=tls / "ca.crt", cwd=layout.ca_home(org), host=host)
