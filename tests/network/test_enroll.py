"""Enrollment through the org's Fabric CA (hfc): the error paths, the CA's generated material and the
authorization token, without a running network."""

from __future__ import annotations

import base64
import json
import socket
import stat
import subprocess
import sys
from dataclasses import replace

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fedfabric.network import ca as fabricca, certs
from fedfabric.network import paths
from fedfabric.network.compose import CONTAINER_RUN, render
from fedfabric.network.enroll import EnrollError, _service, cert_role, enroll
from fedfabric.network.fabricbin import REQUIRED, FabricInstall
from fedfabric.network.identities import issue_role_identity
from fedfabric.network.layout import Layout
from fedfabric.network.manager import SiteManager

from ..conftest import test_config
from ..ports import OFFSETS

OFFSET = OFFSETS["local"]
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CA = replace(certs.CA, subject_key_id=True)   # like cryptogen's CAs: what they issue names them (AKI)


def _ca(cn: str) -> certs.Credential:
    return certs.issue(certs.subject(cn), CA, validity=certs.Validity.days(30))


@pytest.fixture
def layout(tmp_path) -> Layout:
    """A run dir with what each org's init would have written: CA, TLS CA (in its home, and the public
    certificate of its definition), User1's MSP."""
    lay = Layout(tmp_path / "run", test_config(OFFSET))
    for org in lay.config.orgs:
        ca, tlsca = _ca(f"ca.{org.domain}"), _ca(f"tlsca.{org.domain}")
        ca.write(lay.org_ca_cert(org), lay.org_ca_key(org))
        tlsca.write(lay.org_tlsca_dir(org) / f"tlsca.{org.domain}-cert.pem", lay.org_tlsca_dir(org) / "priv_sk")
        lay.org_tls_ca(org).parent.mkdir(parents=True)
        lay.org_tls_ca(org).write_bytes(tlsca.cert_pem)
        t = lay.user_msp(org, "User1")
        for sub, data in (("cacerts", ca.cert_pem), ("tlscacerts", tlsca.cert_pem)):
            (t / sub).mkdir(parents=True)
            (t / sub / f"{sub}.pem").write_bytes(data)
        (t / "config.yaml").write_text("NodeOUs:\n  Enable: true\n")
        user1 = certs.issue(certs.subject(f"User1@{org.domain}", units=["client"]), certs.IDENTITY, ca)
        (t / "signcerts").mkdir()
        (t / "signcerts" / "cert.pem").write_bytes(user1.cert_pem)
    return lay


def _enroll(layout: Layout, org: str, name: str, role: str):
    return enroll(org, name, role, config=layout.config, run_root=layout.root)


@pytest.mark.parametrize("org,name,role,message", [
    ("org1", "alice", "boss", "bad role 'boss': expected one of auditor, trainer, admin"),
    ("org9", "alice", "auditor", "unknown org 'org9' (consortium members: org1, org2, org3)"),
    ("org1", "a/b", "auditor", "bad user name 'a/b'"),
    ("org1", "", "auditor", "bad user name ''"),
    ("org1", "x@y", "auditor", "bad user name 'x@y'"),
])
def test_bad_input_is_refused_before_anything_happens(layout, org, name, role, message) -> None:
    with pytest.raises(EnrollError) as err:
        _enroll(layout, org, name, role)
    assert message in str(err.value)
    assert not any(p.name.startswith(f"{name}@") for o in layout.config.orgs
                   for p in (layout.org_dir(o) / "users").iterdir())


def test_network_identity_without_role_is_not_taken_over(layout) -> None:
    with pytest.raises(EnrollError, match=r"User1@org1.fedfabric.local already exists .* without a "
                                          r"fedfabric.role .*choose another name"):
        _enroll(layout, "org1", "User1", "trainer")


def test_existing_user_same_role_is_reused_other_role_refused(layout) -> None:
    org = layout.config.org("org2")
    msp = issue_role_identity(layout, org, "alice", "auditor")
    before = (msp / "signcerts" / "cert.pem").read_bytes()
    res = _enroll(layout, "Org2MSP", "alice", "auditor")      # no CA is running: not even asked
    assert (res.created, res.role, res.msp_dir, res.enrollment_id) == (False, "auditor", msp,
                                                                      "alice@org2.fedfabric.local")
    assert (msp / "signcerts" / "cert.pem").read_bytes() == before
    with pytest.raises(EnrollError, match="already enrolled with role 'auditor', not 'trainer'"):
        _enroll(layout, "org2", "alice", "trainer")


def test_empty_user_dir_is_reported(layout) -> None:
    org = layout.config.org("org1")
    layout.user_dir(org, "ghost").mkdir(parents=True)
    with pytest.raises(EnrollError, match="exists but holds no certificate"):
        _enroll(layout, "org1", "ghost", "trainer")


def test_ca_not_running_is_named(layout) -> None:
    org = layout.config.org("org3")
    with socket.socket() as s:   # the CA's port answers nothing but TCP: no TLS, no CA
        s.bind(("127.0.0.1", org.ca.port))
        s.listen()
        with pytest.raises(EnrollError) as err:
            _enroll(layout, "org3", "carol", "trainer")
    assert str(err.value) == (f"the CA of org3 (ca.org3, https://127.0.0.1:{org.ca.port}) is not running; "
                              "start the network: network/network.sh up")
    assert not layout.user_dir(org, "carol").exists()


def test_network_not_generated_is_named(tmp_path) -> None:
    with pytest.raises(EnrollError, match="crypto material is missing .* network/network.sh up"):
        enroll("org1", "alice", "auditor", config=test_config(OFFSET), run_root=tmp_path / "nothing")


def _ca_material(layout: Layout) -> None:
    for org in layout.config.orgs:
        fabricca.ensure_ca_material(layout, org)


def test_ca_material_secret_tls_and_config(layout) -> None:
    _ca_material(layout)
    first = {o.name: fabricca.admin_password(layout, o) for o in layout.config.orgs}
    assert len(set(first.values())) == 3 and all(len(p) >= 40 for p in first.values())
    _ca_material(layout)   # idempotent: same password, same TLS cert
    assert first == {o.name: fabricca.admin_password(layout, o) for o in layout.config.orgs}
    for org in layout.config.orgs:
        assert stat.S_IMODE(layout.secrets_dir(org).stat().st_mode) == 0o700
        assert layout.secrets_dir(org).parent == layout.org_home(org)
        for private in (layout.ca_admin_secret(org), layout.ca_home(org) / fabricca.CONFIG_FILE,
                        layout.ca_tls_dir(org) / "server.key"):
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
        assert stat.S_IMODE(layout.ca_home(org).stat().st_mode) == 0o700
        cfg = yaml.safe_load((layout.ca_home(org) / fabricca.CONFIG_FILE).read_text())
        boot = cfg["registry"]["identities"][0]
        assert (boot["name"], boot["pass"], boot["type"]) == ("admin", first[org.name], "client")
        assert cfg["affiliations"] == {org.name: []}
        tls = x509.load_pem_x509_certificate((layout.ca_tls_dir(org) / "server.crt").read_bytes())
        tlsca = x509.load_pem_x509_certificate(layout.org_tls_ca(org).read_bytes())
        assert tls.issuer == tlsca.subject
        tls.verify_directly_issued_by(tlsca)
        sans = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        assert f"ca.{org.domain}" in sans.get_values_for_type(x509.DNSName)


def test_ca_node_spec_tls_loopback_and_no_secret(layout, tmp_path) -> None:
    _ca_material(layout)
    fake = FabricInstall(tmp_path / "bin", tmp_path / "cfg")
    (tmp_path / "bin").mkdir()
    for name in REQUIRED:
        (tmp_path / "bin" / name).write_text("#!/bin/sh\n")
        (tmp_path / "bin" / name).chmod(0o755)
    server = tmp_path / "bin" / "fabric-ca-server"
    net = SiteManager(layout.config, layout.root, fabric=fake)
    specs = net.ca_specs()
    assert [s.node_id for s in specs] == ["ca.org1", "ca.org2", "ca.org3"]
    for org, spec in zip(layout.config.orgs, specs):
        env = spec.env
        assert spec.kind == "ca" and spec.argv == [str(server), "start"]
        assert spec.ports == {"listen": org.ca.port, "operations": org.ca.operations_port}
        assert env["FABRIC_CA_SERVER_ADDRESS"] == "127.0.0.1"
        assert env["FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS"] == f"127.0.0.1:{org.ca.operations_port}"
        assert env["FABRIC_CA_SERVER_TLS_ENABLED"] == env["FABRIC_CA_SERVER_OPERATIONS_TLS_ENABLED"] == "true"
        assert env["FABRIC_CA_SERVER_CA_CERTFILE"] == str(layout.org_ca_cert(org))
        assert env["FABRIC_CA_SERVER_CA_KEYFILE"] == str(layout.org_ca_key(org))
        assert "FABRIC_CA_SERVER_COMPATIBILITY_MODE_V1_3" not in env
        assert spec.health_url == f"https://127.0.0.1:{org.ca.operations_port}/healthz"
        password = fabricca.admin_password(layout, org)
        assert not any(password in v for v in [*env.values(), *spec.argv])
    assert fabricca.admin_password(layout, layout.config.orgs[0]) not in render(net)
    assert CONTAINER_RUN in render(net)


def test_token_is_the_current_fabric_ca_form(layout, monkeypatch) -> None:
    """hfc 1.0.0 signs b64(body).b64(cert); the client signs METHOD.b64(uri).b64(body).b64(cert) over the
    exact bytes it sends, low-S, so Fabric CA needs no compatibility mode."""
    import requests

    org = layout.config.org("org1")
    key = ec.generate_private_key(ec.SECP256R1())
    cert_pem = _ca("admin").cert_pem

    class Registrar:
        _cert, _private_key = cert_pem, key

    sent = []

    class Resp:
        status_code = 201

        @staticmethod
        def json():
            return {"success": True, "result": {"secret": "s3"}, "errors": []}

    def send(self, prepared, **kw):
        sent.append((prepared, kw))
        return Resp()

    monkeypatch.setattr(requests.Session, "send", send)
    service = _service(layout, org, timeout=5)
    assert service._ca_client.register({"id": "alice@org1.fedfabric.local", "type": "client"}, Registrar) == "s3"
    service.newIdentityService().getOne("alice@org1.fedfabric.local", Registrar)
    (post, kw), (get, _) = sent
    assert kw["verify"] == str(layout.org_tls_ca(org)) and kw["timeout"] == 5
    for req, method, uri in ((post, "POST", "/api/v1/register"),
                             (get, "GET", "/api/v1/identities/alice@org1.fedfabric.local?ca=ca.org1")):
        assert req.method == method and req.url == f"https://127.0.0.1:{org.ca.port}{uri}"
        b64cert, b64sig = req.headers["Authorization"].split(".")
        assert base64.b64decode(b64cert) == cert_pem
        body = req.body or b""
        msg = ".".join([method, base64.b64encode(uri.encode()).decode(), base64.b64encode(body).decode(),
                        b64cert]).encode()
        sig = base64.b64decode(b64sig)
        key.public_key().verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        assert decode_dss_signature(sig)[1] <= P256_ORDER // 2   # low-S, as Fabric CA's BCCSP requires
    assert json.loads(post.body) == {"id": "alice@org1.fedfabric.local", "type": "client"}


def test_cert_role_reads_the_attribute_extension(layout) -> None:
    org = layout.config.org("org1")
    msp = issue_role_identity(layout, org, "Auditor", "auditor")
    assert cert_role((msp / "signcerts" / "cert.pem").read_bytes()) == "auditor"
    assert cert_role((layout.user_msp(org, "User1") / "signcerts" / "cert.pem").read_bytes()) is None


def test_hfc_fabric_ca_beside_fabric_protos_without_hfc_fabric() -> None:
    """The enrollment module and the Gateway bindings share a process; hfc.fabric is never loaded."""
    code = ("import sys; sys.path[:0] = [%r, %r]\n"
            "from fabric_protos.gateway import gateway_pb2\n"
            "from fedfabric.ledger import Gateway\n"
            "from fedfabric.network import enroll\n"
            "enroll._hfc()\n"
            "assert 'hfc.fabric_ca.caservice' in sys.modules\n"
            "assert not [m for m in sys.modules if m == 'hfc.fabric' or m.startswith('hfc.fabric.')]\n"
            "assert not [m for m in sys.modules if m.startswith('hfc.protos')]\n"
            % (str(paths.REPO_ROOT / "app"), str(paths.REPO_ROOT / "chaincode")))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
