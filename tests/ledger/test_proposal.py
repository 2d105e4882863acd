"""Proposal building: tx id, header fields, args, transient placement, result extraction."""

from __future__ import annotations

import hashlib

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2

from fedfabric.ledger import Identity
from fedfabric.ledger.proposal import NONCE_SIZE, build_proposal, result_from_envelope, sign_proposal, tx_id_for

from .builders import prepared_envelope


def test_tx_id_derivation() -> None:
    nonce, creator = b"\x01" * 24, b"creator-bytes"
    assert tx_id_for(nonce, creator) == hashlib.sha256(nonce + creator).hexdigest()
    assert len(tx_id_for(nonce, creator)) == 64


def test_proposal_round_trip(identity: Identity) -> None:
    nonce = bytes(range(24))
    tx_id, prop = build_proposal(identity, "fl", "fedfabric", "Round:open", ["a", b"\x00b"],
                                 transient={"update": b"secret-bytes"}, nonce=nonce, now_ns=1_700_000_000_123_456_789)
    header = common_pb2.Header.FromString(prop.header)
    ch = common_pb2.ChannelHeader.FromString(header.channel_header)
    sh = common_pb2.SignatureHeader.FromString(header.signature_header)
    assert ch.type == common_pb2.ENDORSER_TRANSACTION
    assert ch.channel_id == "fl"
    assert ch.tx_id == tx_id == tx_id_for(nonce, identity.serialized())
    assert (ch.timestamp.seconds, ch.timestamp.nanos) == (1_700_000_000, 123_456_789)
    assert proposal_pb2.ChaincodeHeaderExtension.FromString(ch.extension).chaincode_id.name == "fedfabric"
    assert sh.creator == identity.serialized() and sh.nonce == nonce
    cpp = proposal_pb2.ChaincodeProposalPayload.FromString(prop.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input).chaincode_spec
    assert spec.chaincode_id.name == "fedfabric"
    assert list(spec.input.args) == [b"Round:open", b"a", b"\x00b"]
    assert dict(cpp.TransientMap) == {"update": b"secret-bytes"}
    # The transient map lives beside the invocation spec, never inside it (the part that is persisted).
    assert b"secret-bytes" not in cpp.input


def test_fresh_nonce_each_time(identity: Identity) -> None:
    a = sign_proposal(identity, "fl", "cc", "f")
    b = sign_proposal(identity, "fl", "cc", "f")
    assert a.tx_id != b.tx_id
    sh = common_pb2.SignatureHeader.FromString(
        common_pb2.Header.FromString(proposal_pb2.Proposal.FromString(a.signed.proposal_bytes).header).signature_header)
    assert len(sh.nonce) == NONCE_SIZE
    assert identity.verify(a.signed.signature, a.signed.proposal_bytes)


def test_rejects_non_bytes_args(identity: Identity) -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        build_proposal(identity, "fl", "cc", "f", [3])  # type: ignore[list-item]


def test_result_from_prepared_envelope(identity: Identity) -> None:
    _, prop = build_proposal(identity, "fl", "fedfabric", "f", ["x"], transient={"k": b"hidden"})
    env = prepared_envelope(prop, b'{"round": 3}')
    assert result_from_envelope(env) == b'{"round": 3}'
    assert b"hidden" not in env.payload  # the prepared transaction carries no transient data


def test_result_from_envelope_without_actions() -> None:
    payload = common_pb2.Payload(data=b"")
    with pytest.raises(ValueError, match="no proposal response"):
        result_from_envelope(common_pb2.Envelope(payload=payload.SerializeToString()))
