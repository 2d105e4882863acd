"""Block decoding: header hash (DER), validation flags, per-transaction facts without arg values."""

from __future__ import annotations

import hashlib

from fabric_protos.common import common_pb2
from fabric_protos.peer import transaction_pb2
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from google.protobuf import timestamp_pb2

from fedfabric.ledger import Identity
from fedfabric.ledger.blocks import decode_block, decode_envelope, der_integer, header_bytes, header_hash
from fedfabric.ledger.proposal import build_proposal

from .builders import block, prepared_envelope, rwset


def test_der_integer() -> None:
    assert der_integer(0) == bytes.fromhex("020100")
    assert der_integer(1) == bytes.fromhex("020101")
    assert der_integer(127) == bytes.fromhex("02017f")
    assert der_integer(128) == bytes.fromhex("02020080")
    assert der_integer(256) == bytes.fromhex("02020100")
    assert der_integer(2**64 - 1) == bytes.fromhex("020900ffffffffffffffff")
    # cross-check against an independent DER encoder: SEQUENCE{INTEGER n, INTEGER 1}
    for n in (1, 127, 128, 255, 256, 65535, 2**31, 2**63, 2**64 - 1):
        body = der_integer(n) + der_integer(1)
        assert encode_dss_signature(n, 1) == bytes([0x30, len(body)]) + body


def test_header_hash_matches_hand_der() -> None:
    prev, data = b"\xaa" * 32, b"\xbb" * 32
    expected_der = bytes.fromhex("3047" "020101" "0420") + prev + bytes.fromhex("0420") + data
    assert header_bytes(1, prev, data) == expected_der
    hdr = common_pb2.BlockHeader(number=1, previous_hash=prev, data_hash=data)
    assert header_hash(hdr) == hashlib.sha256(expected_der).digest()
    # genesis block: empty previous hash; and long-form lengths
    assert header_bytes(0, b"", data) == bytes.fromhex("3027" "020100" "0400" "0420") + data
    long = header_bytes(300, b"\x01" * 200, b"")
    assert long.startswith(bytes.fromhex("3081d1" "0202012c" "0481c8"))


def _config_envelope() -> bytes:
    ch = common_pb2.ChannelHeader(type=common_pb2.CONFIG, channel_id="fl", tx_id="",
                                  timestamp=timestamp_pb2.Timestamp(seconds=0))
    payload = common_pb2.Payload(header=common_pb2.Header(channel_header=ch.SerializeToString()), data=b"cfg")
    return common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()


def test_decode_block(identity: Identity) -> None:
    ns = 1_764_000_000_250_000_000  # 2025-11-24T16:00:00.25Z
    tx1, p1 = build_proposal(identity, "fl", "fedfabric", "submitUpdate", ["job1", "3", "SECRET-ARG"],
                             transient={"update": b"T"}, now_ns=ns)
    tx2, p2 = build_proposal(identity, "fl", "fedfabric", "approve", ["job1"], now_ns=ns)
    e1 = prepared_envelope(p1, b"r1", event=("UpdateSubmitted", b"{}"),
                           results=rwset("fedfabric", [("job1/round/3", False), ("old", True)],
                                         private=[("updates", b"\x12\x34")]),
                           endorser_msps=("Org1MSP", "Org2MSP"))
    e2 = prepared_envelope(p2, b"r2")
    envs = [_config_envelope(), e1.SerializeToString(), e2.SerializeToString()]
    flags = bytes([transaction_pb2.VALID, transaction_pb2.VALID, transaction_pb2.MVCC_READ_CONFLICT])
    blk = block(5, b"\x11" * 32, envs, flags)
    d = decode_block(blk)
    assert d["number"] == 5
    assert d["previous_hash"] == "11" * 32
    assert d["data_hash"] == hashlib.sha256(b"".join(envs)).hexdigest()
    assert d["data_hash_ok"] is True
    assert d["header_hash"] == hashlib.sha256(header_bytes(5, b"\x11" * 32, blk.header.data_hash)).hexdigest()
    cfg, t1, t2 = d["transactions"]
    assert cfg["type"] == "CONFIG" and cfg["chaincode"] is None and cfg["validation_code"] == "VALID"
    assert t1["tx_id"] == tx1 and t1["type"] == "ENDORSER_TRANSACTION" and t1["channel_id"] == "fl"
    assert t1["timestamp"] == "2025-11-24T16:00:00.250000Z"
    assert t1["creator_msp"] == "Org1MSP"
    assert (t1["chaincode"], t1["function"], t1["args_count"]) == ("fedfabric", "submitUpdate", 3)
    assert t1["validation_code"] == "VALID"
    assert t1["events"] == [{"chaincode": "fedfabric", "name": "UpdateSubmitted", "payload_size": 2}]
    assert t1["writes"] == [{"namespace": "fedfabric", "key": "job1/round/3", "is_delete": False},
                            {"namespace": "fedfabric", "key": "old", "is_delete": True}]
    assert t1["private_writes"] == [{"namespace": "fedfabric", "collection": "updates", "key_hash": "1234",
                                     "is_delete": False}]
    assert t1["endorsers"] == ["Org1MSP", "Org2MSP"]
    assert "SECRET-ARG" not in repr(d) and "'T'" not in repr(d)
    assert t2["tx_id"] == tx2 and t2["validation_code"] == "MVCC_READ_CONFLICT" and t2["writes"] == []


def test_tampered_block_detected(identity: Identity) -> None:
    _, p = build_proposal(identity, "fl", "cc", "f")
    blk = block(1, b"", [prepared_envelope(p, b"").SerializeToString()], bytes([0]))
    blk.data.data[0] = blk.data.data[0] + b"\x00"
    assert decode_block(blk)["data_hash_ok"] is False


def test_missing_flags_and_garbage_tx() -> None:
    blk = common_pb2.Block(header=common_pb2.BlockHeader(number=2))
    blk.data.data.append(b"\xff\xff not a protobuf")
    d = decode_block(blk)
    assert d["transactions"][0]["type"] == "UNDECODABLE"
    assert d["transactions"][0]["validation_code"] is None


def test_decode_envelope_ids(identity: Identity) -> None:
    tx, p = build_proposal(identity, "fl", "cc", "f", ["a", "b"])
    t = decode_envelope(prepared_envelope(p, b"x").SerializeToString())
    assert (t["tx_id"], t["function"], t["args_count"]) == (tx, "f", 2)


def test_malformed_actions_keep_header_facts(identity: Identity) -> None:
    tx_id, p = build_proposal(identity, "fl", "cc", "f")
    env = prepared_envelope(p, b"x")
    payload = common_pb2.Payload.FromString(env.payload)
    payload.data = b"\xff\xff broken"
    env.payload = payload.SerializeToString()
    t = decode_envelope(env.SerializeToString())
    assert t["tx_id"] == tx_id and t["creator_msp"] == "Org1MSP"
    assert "undecodable" in t["error"] and t["chaincode"] is None
