"""Live: no file of a running network that holds a private key can be read by anyone but its owner,
and every one lies in the home of the org it belongs to.

Walks the whole run directory of the session's network (the chaincode deployed, a user enrolled
through a Fabric CA) and finds every key file: cryptogen's and the role identities' keystores, the
enrolled user's, the Fabric CA servers' TLS and idemix keys, the chaincode servers' TLS keys, the
CCaaS package tarballs (their connection.json holds the peer's client key), the copies each peer
installed and its external builder's connection.json. Each must be 0600 or stricter, and every
directory from it up to the run root must be 0700 or stricter; each must be under ``orgs/<org>/``.

Run it on a network of its own ports: ``FEDFABRIC_TEST_PORT_OFFSET=16000`` (see tests/ports.py).
"""
from __future__ import annotations

import uuid

import pytest

from fedfabric.network.enroll import enroll

from .keyscan import exposures, key_files

pytestmark = pytest.mark.live


def test_every_key_file_and_the_directories_above_it_are_owner_only(live_network) -> None:
    net = live_network
    root = net.layout.root
    user = f"keys-{uuid.uuid4().hex[:8]}"
    enrolled = enroll("org1", user, "trainer", config=net.config, run_root=root)

    found = key_files(root)
    rel = [p.relative_to(root).as_posix() for p in found]
    cc = net.config.chaincode.name
    kinds = {
        "cryptogen keystores": [r for r in rel if "/crypto/" in r and r.endswith("/keystore/priv_sk")],
        "enrolled user": [r for r in rel if f"/users/{user}@" in r],
        "role identity": [r for r in rel if "/users/Auditor@" in r],
        "Fabric CA TLS": [r for r in rel if "/fabric-ca/tls/server.key" in r],
        "Fabric CA idemix keys": [r for r in rel if "/nodes/ca." in r and "IssuerSecretKey" in r],
        "chaincode TLS": [r for r in rel if f"/chaincode/{cc}/" in r and r.endswith("/tls/client.key")],
        "package tarballs": [r for r in rel if f"/chaincode/{cc}/" in r and r.endswith(f"/{cc}.tar.gz")],
        "installed packages": [r for r in rel if "/lifecycle/chaincodes/" in r],
        "builder output": [r for r in rel if "/externalbuilder/" in r and r.endswith("connection.json")],
    }
    n_orgs = len(net.config.orgs)
    missing = [k for k, v in kinds.items() if not v]
    assert not missing, f"no key file found for {missing} among {len(rel)}: the scan missed them"
    assert len(kinds["package tarballs"]) == n_orgs and len(kinds["Fabric CA idemix keys"]) == n_orgs
    assert enrolled.msp_dir / "keystore" / "priv_sk" in found

    assert exposures(root, found) == []
    owners = {o.name for o in net.config.orgs} | {net.config.orderer_org.name}
    assert [r for r in rel if r.split("/")[:1] != ["orgs"] or r.split("/")[1] not in owners] == []
    for org in net.config.orgs:   # an org's chaincode and enrolled users stay in its own home
        assert all(r.startswith(f"orgs/{org.name}/") for r in rel if f".{org.domain}" in r.split("/")[-1]
                   or f"@{org.domain}" in r)
