"""TLS and mutual TLS with a fake peer."""
from __future__ import annotations

import time

import grpc
import pytest

from fabshim.server import ChaincodeServer, TLSConfig

from .certs import key_pem, make_cert, pem
from .fakepeer import FakePeer
from .test_handler import RawCC, M


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_cert("ca", ca=True)
    srv = make_cert("localhost", issuer=ca, san_ip=True)
    cli = make_cert("peer0", issuer=ca)
    files = {}
    for n, data in {"ca": pem(ca[0]), "srv": pem(srv[0]), "srvkey": key_pem(srv[1])}.items():
        files[n] = str(d / n)
        (d / n).write_bytes(data)
    return ca, srv, cli, files


def _roundtrip(port, creds):
    p = FakePeer(f"localhost:{port}", {}, creds=creds)
    deadline = time.time() + 5
    while p.register is None and p.reader.is_alive() and time.time() < deadline:  # a peer sends transactions only once READY
        time.sleep(0.01)
    p.send_tx("t", [b"put", b"a", b"b"])
    try:
        return p.wait(["t"], timeout=5)["t"]
    finally:
        p.close()


def test_tls(pki):
    ca, srv, cli, f = pki
    s = ChaincodeServer(RawCC(), "127.0.0.1:0", "cc", TLSConfig(f["srv"], f["srvkey"], None))
    s.start()
    try:
        assert _roundtrip(s.port, grpc.ssl_channel_credentials(pem(ca[0]))).type == M.COMPLETED
    finally:
        s.stop(0)


def test_mutual_tls(pki):
    ca, srv, cli, f = pki
    s = ChaincodeServer(RawCC(), "127.0.0.1:0", "cc", TLSConfig(f["srv"], f["srvkey"], f["ca"]))
    s.start()
    try:
        good = grpc.ssl_channel_credentials(pem(ca[0]), key_pem(cli[1]), pem(cli[0]))
        assert _roundtrip(s.port, good).type == M.COMPLETED
        with pytest.raises(AssertionError):
            _roundtrip(s.port, grpc.ssl_channel_credentials(pem(ca[0])))
    finally:
        s.stop(0)
