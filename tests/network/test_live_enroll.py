"""Live: users enrolled through each org's Fabric CA with hfc act on the real network with their role.

Uses the session's ``live_network`` (its CAs sign with the orgs' cryptogen CAs) and the product
chaincode; initializes the consortium once (tolerating another test file having done it).
"""

from __future__ import annotations

import json
import shutil
import stat
from typing import Iterator

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fedfabric.client import Rejected, open_client
from fedfabric.network import ca as fabricca
from fedfabric.network.enroll import ATTRIBUTE_OID, EnrollError, enroll

from ..chaincode_live import helpers as H

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def cons(live_network) -> Iterator[H.Consortium]:
    with H.initialized_consortium(live_network) as c:
        yield c


def _enroll(net, org: str, name: str, role: str):
    return enroll(org, name, role, config=net.config, run_root=net.layout.root)


def _client(net, org: str, name: str):
    gw, client = open_client(org, name, config=net.config, run_root=net.layout.root)
    client.retries, client.retry_delay = 120, 0.5
    return gw, client


def test_auditor_from_the_ca_reads_but_never_writes(live_network, cons: H.Consortium) -> None:
    net = live_network
    org = net.config.org("org1")
    name = H.uid("aud")
    res = _enroll(net, "org1", name, "auditor")
    assert (res.created, res.ca, res.role) == (True, "ca.org1", "auditor")
    assert res.msp_dir == net.layout.user_msp(org, name)

    # what the CA issued: signed by the org's CA, OU client (NodeOUs), the role attribute in the ecert
    cert = x509.load_pem_x509_certificate((res.msp_dir / "signcerts" / "cert.pem").read_bytes())
    root = x509.load_pem_x509_certificate(net.layout.org_ca_cert(org).read_bytes())
    cert.verify_directly_issued_by(root)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"{name}@org1.fedfabric.local"
    assert "client" in [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    attrs = json.loads(cert.extensions.get_extension_for_oid(ATTRIBUTE_OID).value.value)["attrs"]
    assert attrs["fedfabric.role"] == "auditor" and attrs["hf.Type"] == "client"
    assert attrs["hf.EnrollmentID"] == res.enrollment_id
    assert stat.S_IMODE((res.msp_dir / "keystore" / "priv_sk").stat().st_mode) == 0o600
    assert (res.msp_dir / "config.yaml").read_text() == \
        (net.layout.user_msp(org, "User1") / "config.yaml").read_text()

    # idempotent; a different role for the same name is refused
    again = _enroll(net, "org1", name, "auditor")
    assert not again.created and again.msp_dir == res.msp_dir
    with pytest.raises(EnrollError, match="already enrolled with role 'auditor', not 'admin'"):
        _enroll(net, "org1", name, "admin")

    # the peers accept it (MSP) and the chaincode sees role auditor
    gw, auditor = _client(net, "org1", name)
    with gw:
        assert set(cons.msps) <= {o["msp_id"] for o in auditor.list_orgs()}
        heights = cons.heights()
        with pytest.raises(Rejected) as ei:
            auditor.create_job(H.secure_job_spec(H.uid("ca-audit"), 10))
        assert ei.value.message == "create_job: auditors are read-only" and ei.value.status == 403
        assert cons.heights() == heights

    # its MSP lost: registered at the CA already, so a fresh secret and a new certificate
    shutil.rmtree(res.msp_dir.parent)
    with pytest.raises(EnrollError, match=f"{res.enrollment_id} is already registered at ca.org1 with role "
                                          "'auditor', not 'trainer'"):
        _enroll(net, "org1", name, "trainer")
    renewed = _enroll(net, "org1", name, "auditor")
    assert renewed.created
    new_cert = x509.load_pem_x509_certificate((renewed.msp_dir / "signcerts" / "cert.pem").read_bytes())
    assert new_cert.serial_number != cert.serial_number


def test_trainer_and_admin_from_the_ca_write_with_their_roles(live_network, cons: H.Consortium) -> None:
    net = live_network
    trainer_name, admin_name = H.uid("trn"), H.uid("adm")
    assert _enroll(net, "org2", trainer_name, "trainer").created
    assert _enroll(net, "Org3MSP", admin_name, "admin").created
    gw_t, trainer = _client(net, "org2", trainer_name)
    gw_a, admin = _client(net, "org3", admin_name)
    with gw_t, gw_a:
        missing = H.uid("no-such-job")
        with pytest.raises(Rejected) as ei:      # a trainer may register round keys: the job is what is missing
            trainer.register(missing, 1, bytes(32))
        assert "not found" in ei.value.message and "role" not in ei.value.message, ei.value.message
        with pytest.raises(Rejected, match=r"create_job: role 'trainer' is not allowed \(requires admin\)"):
            trainer.create_job(H.secure_job_spec(H.uid("ca-trainer"), 10))

        job_id = H.uid("ca-job")
        created = cons.synced(admin.create_job(H.secure_job_spec(job_id, 10)))    # committed by every peer
        assert created.value["job_id"] == job_id
        reg = cons.synced(trainer.register(job_id, 1, bytes(range(32))))
        assert reg.value["round"] == 1 and reg.value["msp_id"] == "Org2MSP" and reg.value["via"] == "register"
        assert cons.first().trainer.get_round(job_id, 1).state.value == "registration"


def test_bootstrap_password_never_reaches_logs_or_state(live_network, cons: H.Consortium) -> None:
    layout = live_network.layout
    passwords = [fabricca.admin_password(layout, o) for o in layout.config.orgs]
    files = [p for p in layout.root.joinpath("logs").iterdir()] + [layout.state_file]
    for path in files:
        text = path.read_text(errors="replace")
        assert not any(pw in text for pw in passwords), path
    for org in layout.config.orgs:
        assert stat.S_IMODE(layout.ca_admin_secret(org).stat().st_mode) == 0o600
