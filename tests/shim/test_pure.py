"""Composite keys, ClientIdentity, Contract router."""
from __future__ import annotations

import json

import pytest
from fabric_protos.msp import identities_pb2

from fabshim.compositekey import create_composite_key, split_composite_key
from fabshim.contract import Chaincode, ChaincodeError, Contract, transaction
from fabshim.identity import ClientIdentity, IdentityError

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


@pytest.mark.parametrize("key, expected", [
    ("\x00asset\x00a\x00b\x00", ("asset", ["a", "b"])),
    ("\x00asset\x00", ("asset", [])),
    ("\x00asset\x00\x00x\x00", ("asset", ["", "x"])),  # empty attributes are kept
    ("a\x00b\x00", ("", ["b"])),                      # Go skips the first character whatever it is
    ("xasset\x00a\x00", ("asset", ["a"])),
    ("\x00t\x00x", ("t", [])),                         # text after the last separator is dropped
    ("\x00t\x00x\x00tail", ("t", ["x"])),
    ("\x00\x00", ("", [])),
])
def test_split_composite_key_like_go(key, expected):
    assert split_composite_key(key) == expected


@pytest.mark.parametrize("key", ["", "\x00", "plain", "\x00asset"])
def test_split_composite_key_without_separator_is_refused(key):
    with pytest.raises(ValueError, match="invalid composite key"):  # Go panics (index out of range)
        split_composite_key(key)


def _identity(**cert_kw) -> ClientIdentity:
    ca = make_cert("ca.org1", ca=True)
    cert, _ = make_cert("user1", issuer=ca, **cert_kw)
    return ClientIdentity(identities_pb2.SerializedIdentity(mspid="Org1MSP", id_bytes=pem(cert)).SerializeToString())


@pytest.mark.parametrize("raw, attrs", [
    (b"null", {}), (b"{}", {}), (b'{"attrs":null}', {}), (b'{"attrs":{}}', {}),
    (b'{"other":[1,2],"attrs":{"role":"admin"}}', {"role": "admin"}),
    (b'{"Attrs":{"role":"admin"}}', {"role": "admin"}),          # Go matches member names case-insensitively
    (b'{"attrs":{"role":"admin"},"attrs":{"x":null}}', {"role": "admin", "x": ""}),  # Go merges, null -> ""
    (b'{"attrs":{"role":"admin"},"attrs":null}', {}),
])
def test_attribute_json_accepted_like_go(raw, attrs):
    ci = _identity(attrs_raw=raw)
    assert {n: ci.get_attribute(n) for n in attrs} == attrs
    assert ci.get_attribute("missing") is None


@pytest.mark.parametrize("raw", [
    b"{not json", b"[]", b'"attrs"', b'{"attrs":["role"]}', b'{"attrs":{"role":1}}', b'{"attrs":{"a":true}}',
    b'{"attrs":{"a":"b"},"x":NaN}', b"",
])
def test_malformed_attribute_json_fails_like_go_cid_new(raw):
    with pytest.raises(IdentityError, match="failed to unmarshal attributes from certificate") as ei:
        _identity(attrs_raw=raw)
    assert isinstance(ei.value, ValueError)
    assert "role" not in str(ei.value)  # the content is never quoted


def test_client_identity_without_attribute_extension():
    ci = _identity(ous=["client"])
    assert ci.get_attribute("role") is None and ci.has_ou("client")


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

    def get_args(self):
        return list(self.args)

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


    @transaction
    def blob(self, ctx, data: bytes, label: str) -> bytes:
        return data + b"|" + label.encode()


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
    assert r.status == 500 and r.message.startswith("internal error in crash: KeyError: ") and "zz" in r.message
    assert CC.invoke(FakeStub("nope")).status == 500


def test_metadata():
    md = json.loads(CC.invoke(FakeStub("org.hyperledger.fabric:GetMetadata")).payload)
    assert md["default"] == "assets"
    txs = {t["name"]: t for t in md["contracts"]["assets"]["transactions"]}
    assert txs["read"]["evaluate"] is True and txs["make"]["evaluate"] is False
    assert [p["name"] for p in txs["make"]["parameters"]] == ["n", "ok", "data", "label"]
    assert [p["type"] for p in txs["make"]["parameters"]] == ["int", "bool", "dict", "str"]


def test_bytes_parameter_round_trips_non_utf8():
    raw = bytes(range(256))  # not valid UTF-8
    r = CC.invoke(FakeStub("blob", raw, "tag"))
    assert (r.status, r.payload) == (200, raw + b"|tag")


def test_non_utf8_for_a_text_parameter_is_refused_clearly():
    r = CC.invoke(FakeStub("blob", b"ok", b"\xff\xfe"))
    assert r.status == 500
    assert r.message == ("blob: argument 'label' is not valid UTF-8 "
                         "(declare the parameter as bytes to receive raw bytes)")
    r = CC.invoke(FakeStub(b"\xffblob", b"ok", b"x"))
    assert (r.status, r.message) == (500, "the function name must be valid UTF-8")


def test_metadata_types_bytes():
    md = json.loads(CC.invoke(FakeStub("org.hyperledger.fabric:GetMetadata")).payload)
    blob = {t["name"]: t for t in md["contracts"]["assets"]["transactions"]}["blob"]
    assert [p["type"] for p in blob["parameters"]] == ["bytes", "str"]
