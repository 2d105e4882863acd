"""Composite keys, ClientIdentity, Contract router."""
from __future__ import annotations

import json

import pytest
from fabric_protos.msp import identities_pb2

from fabshim.compositekey import create_composite_key, split_composite_key
from fabshim.contract import Chaincode, ChaincodeError, Contract, transaction
from fabshim.identity import ClientIdentity

from .certs import make_cert, pem


def test_composite_key_roundtrip_and_validation():
    k = create_composite_key("asset", ["a", "b"])
    assert k == "\x00asset\x00a\x00b\x00"
    assert split_composite_key(k) == ("asset", ["a", "b"])
    with pytest.raises(ValueError):
        create_composite_key("as\x00set", [])
    with pytest.raises(ValueError):
        create_composite_key("asset", ["x\U0010ffff"])
    with pytest.raises(ValueError):
        create_composite_key("asset", ["\ud800"])


def test_client_identity():
    ca = make_cert("ca.org1", ca=True)
    cert, _ = make_cert("user1", issuer=ca, ous=["client", "auditor"], attrs={"role": "auditor"})
    creator = identities_pb2.SerializedIdentity(mspid="Org1MSP", id_bytes=pem(cert)).SerializeToString()
    ci = ClientIdentity(creator)
    assert ci.msp_id == "Org1MSP"
    assert ci.id == ("x509::CN=user1,OU=client+OU=auditor,O=org1.example.com,C=US"
                     "::CN=ca.org1,O=org1.example.com,C=US")
    assert ci.get_attribute("role") == "auditor" and ci.get_attribute("nope") is None
    ci.assert_attribute_value("role", "auditor")
    with pytest.raises(PermissionError):
        ci.assert_attribute_value("role", "admin")
    assert ci.has_ou("auditor") and not ci.has_ou("admin")


class FakeStub:
    def __init__(self, *args):
        self.args = [a.encode() if isinstance(a, str) else a for a in args]
        self.tx_id = "tx1"

    def get_string_args(self):
        return [a.decode() for a in self.args]

    def get_function_and_parameters(self):
        a = self.get_string_args()
        return a[0], a[1:]


class Assets(Contract):
    name = "assets"

    @transaction
    def make(self, ctx, n: int, ok: bool, data: dict, label: str) -> dict:
        return {"n": n * 2, "ok": ok, "data": data, "label": label, "tx": ctx.tx_id}

    @transaction(evaluate=True)
    def read(self, ctx, key: str) -> str:
        raise ChaincodeError(f"asset {key} does not exist", 404)

    @transaction
    def crash(self, ctx) -> None:
        raise KeyError("zz")


class Other(Contract):
    name = "other"

    @transaction
    def ping(self, ctx) -> bytes:
        return b"pong"


CC = Chaincode([Assets(), Other()])


def test_router_conversion():
    r = CC.invoke(FakeStub("make", "21", "true", '{"b":1,"a":2}', "x"))
    assert r.status == 200
    assert r.payload == b'{"data":{"a":2,"b":1},"label":"x","n":42,"ok":true,"tx":"tx1"}'
    assert CC.invoke(FakeStub("other:ping")).payload == b"pong"
    assert CC.invoke(FakeStub("assets:make", "1", "true", "{}", "y")).status == 200


def test_router_errors():
    r = CC.invoke(FakeStub("make", "x", "true", "{}", "l"))
    assert r.status == 500 and "make" in r.message and "'n'" in r.message
    r = CC.invoke(FakeStub("make", "1", "yes", "{}", "l"))
    assert "'ok'" in r.message
    r = CC.invoke(FakeStub("make", "1"))
    assert r.status == 500 and "expected 4 arguments" in r.message
    r = CC.invoke(FakeStub("read", "k9"))
    assert (r.status, r.message) == (404, "asset k9 does not exist")
    r = CC.invoke(FakeStub("crash"))
    assert r.status == 500 and r.message == "internal error in crash: KeyError: 'zz'"
    assert CC.invoke(FakeStub("nope")).status == 500


def test_metadata():
    md = json.loads(CC.invoke(FakeStub("org.hyperledger.fabric:GetMetadata")).payload)
    assert md["default"] == "assets"
    txs = {t["name"]: t for t in md["contracts"]["assets"]["transactions"]}
    assert txs["read"]["evaluate"] is True and txs["make"]["evaluate"] is False
    assert [p["name"] for p in txs["make"]["parameters"]] == ["n", "ok", "data", "label"]
    assert [p["type"] for p in txs["make"]["parameters"]] == ["int", "bool", "dict", "str"]
