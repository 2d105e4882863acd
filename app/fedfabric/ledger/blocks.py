"""Decoding of ledger blocks and transactions into plain dicts for audit (no argument values)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2


# -- block header hash -----------------------------------------------------------------------
def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def der_integer(value: int) -> bytes:
    """DER INTEGER of a non-negative number (minimal two's complement: a leading 0 if the top bit is set)."""
    if value < 0:
        raise ValueError("block numbers are unsigned")
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def header_bytes(number: int, previous_hash: bytes, data_hash: bytes) -> bytes:
    """ASN.1 DER ``SEQUENCE{INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash}``."""
    return _der(0x30, der_integer(number) + _der(0x04, previous_hash) + _der(0x04, data_hash))


def header_hash(header: common_pb2.BlockHeader) -> bytes:
    """Fabric's block hash: SHA-256 of the DER-encoded header."""
    return hashlib.sha256(header_bytes(header.number, header.previous_hash, header.data_hash)).digest()


def data_hash(block: common_pb2.Block) -> bytes:
    """SHA-256 of the concatenated envelopes, which ``header.data_hash`` must equal."""
    return hashlib.sha256(b"".join(block.data.data)).digest()


# -- transactions ----------------------------------------------------------------------------
def iso_utc(ts: Any) -> str | None:
    """ISO-8601 UTC string of a protobuf Timestamp (``None`` if unset)."""
    if not ts.seconds and not ts.nanos:
        return None
    dt = datetime.fromtimestamp(ts.seconds, tz=timezone.utc).replace(microsecond=ts.nanos // 1000)
    return dt.isoformat().replace("+00:00", "Z")


def header_type_name(t: int) -> str:
    try:
        return common_pb2.HeaderType.Name(t)
    except ValueError:
        return f"TYPE_{t}"


def validation_name(code: int) -> str:
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return f"CODE_{code}"


def validation_flags(block: common_pb2.Block) -> bytes:
    """The TRANSACTIONS_FILTER metadata (one validation code byte per transaction)."""
    md = block.metadata.metadata
    return md[common_pb2.TRANSACTIONS_FILTER] if len(md) > common_pb2.TRANSACTIONS_FILTER else b""


def _writes(results: bytes) -> tuple[list[dict], list[dict]]:
    """Public writes and hashed private writes of a serialized TxReadWriteSet."""
    if not results:
        return [], []
    txrw = rwset_pb2.TxReadWriteSet.FromString(results)
    public: list[dict] = []
    private: list[dict] = []
    for ns in txrw.ns_rwset:
        kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
        public += [{"namespace": ns.namespace, "key": w.key, "is_delete": w.is_delete} for w in kv.writes]
        for coll in ns.collection_hashed_rwset:
            hashed = kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset)
            private += [{"namespace": ns.namespace, "collection": coll.collection_name,
                         "key_hash": w.key_hash.hex(), "is_delete": w.is_delete} for w in hashed.hashed_writes]
    return public, private


def _endorser_actions(tx_bytes: bytes) -> list[dict]:
    out: list[dict] = []
    for action in transaction_pb2.Transaction.FromString(tx_bytes).actions:
        cap = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
        cpp = proposal_pb2.ChaincodeProposalPayload.FromString(cap.chaincode_proposal_payload)
        spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input).chaincode_spec
        prp = proposal_response_pb2.ProposalResponsePayload.FromString(cap.action.proposal_response_payload)
        cca = proposal_pb2.ChaincodeAction.FromString(prp.extension)
        args = list(spec.input.args)
        writes, private_writes = _writes(cca.results)
        events = []
        if cca.events:
            ev = chaincode_event_pb2.ChaincodeEvent.FromString(cca.events)
            if ev.event_name:
                events.append({"chaincode": ev.chaincode_id, "name": ev.event_name, "payload_size": len(ev.payload)})
        out.append({
            "chaincode": cca.chaincode_id.name or spec.chaincode_id.name,
            "chaincode_version": cca.chaincode_id.version,
            "function": args[0].decode("utf-8", "replace") if args else None,
            "args_count": max(len(args) - 1, 0),
            "response_status": cca.response.status,
            "events": events,
            "writes": writes,
            "private_writes": private_writes,
            "endorsers": [_msp_of(e.endorser) for e in cap.action.endorsements],
        })
    return out


def _msp_of(serialized_identity: bytes) -> str | None:
    try:
        return identities_pb2.SerializedIdentity.FromString(serialized_identity).mspid or None
    except Exception:  # noqa: BLE001
        return None


def decode_envelope(envelope_bytes: bytes) -> dict:
    """Per-transaction facts of an Envelope: ids, type, time, creator org, chaincode call, writes."""
    env = common_pb2.Envelope.FromString(envelope_bytes)
    payload = common_pb2.Payload.FromString(env.payload)
    ch = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    sh = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    tx: dict[str, Any] = {
        "tx_id": ch.tx_id,
        "type": header_type_name(ch.type),
        "channel_id": ch.channel_id,
        "timestamp": iso_utc(ch.timestamp),
        "creator_msp": _msp_of(sh.creator),
        "chaincode": None, "function": None, "args_count": 0,
        "events": [], "writes": [], "private_writes": [],
    }
    if ch.type == common_pb2.ENDORSER_TRANSACTION:
        try:
            actions = _endorser_actions(payload.data)
        except Exception as exc:  # noqa: BLE001 - keep the header facts of a malformed transaction
            tx["error"] = f"undecodable transaction actions: {exc}"
            actions = []
        if actions:
            first = actions[0]
            tx.update({k: first[k] for k in ("chaincode", "function", "args_count", "endorsers")})
            for a in actions:
                tx["events"] += a["events"]
                tx["writes"] += a["writes"]
                tx["private_writes"] += a["private_writes"]
    return tx


def decode_block(block: common_pb2.Block) -> dict:
    """A block as a dict: header fields, its hash, and each transaction with its validation code."""
    flags = validation_flags(block)
    txs = []
    for i, env in enumerate(block.data.data):
        try:
            tx = decode_envelope(env)
        except Exception as exc:  # noqa: BLE001 - keep auditing the rest of the block
            tx = {"tx_id": None, "type": "UNDECODABLE", "error": str(exc)}
        tx["index"] = i
        tx["validation_code"] = validation_name(flags[i]) if i < len(flags) else None
        txs.append(tx)
    return {
        "number": block.header.number,
        "previous_hash": block.header.previous_hash.hex(),
        "data_hash": block.header.data_hash.hex(),
        "header_hash": header_hash(block.header).hex(),
        "data_hash_ok": data_hash(block) == block.header.data_hash,
        "transactions": txs,
    }
