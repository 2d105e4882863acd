"""Building signed transaction proposals and reading results out of prepared transactions."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Iterable, Mapping

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import timestamp_pb2

from .identity import Identity

NONCE_SIZE = 24

Arg = str | bytes


def new_nonce() -> bytes:
    """24 random bytes, as the official clients use."""
    return os.urandom(NONCE_SIZE)


def tx_id_for(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction id: ``hex(sha256(nonce + creator))``."""
    return hashlib.sha256(nonce + creator).hexdigest()


def _as_bytes(arg: Arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode("utf-8")
    raise TypeError(f"chaincode arguments must be str or bytes, not {type(arg).__name__}")


@dataclass(frozen=True)
class SignedProposal:
    """A signed proposal with the ids the Gateway requests need."""

    tx_id: str
    channel_id: str
    signed: proposal_pb2.SignedProposal


def build_proposal(identity: Identity, channel_id: str, chaincode_id: str, function: str,
                   args: Iterable[Arg] = (), transient: Mapping[str, bytes] | None = None,
                   nonce: bytes | None = None, now_ns: int | None = None) -> tuple[str, proposal_pb2.Proposal]:
    """A ``protos.Proposal`` for an ENDORSER_TRANSACTION invoking ``function(*args)``.

    Transient data goes only into the proposal payload's ``TransientMap``; Fabric strips it
    before anything reaches the ledger.
    """
    nonce = new_nonce() if nonce is None else nonce
    creator = identity.serialized()
    tx_id = tx_id_for(nonce, creator)
    cc_id = chaincode_pb2.ChaincodeID(name=chaincode_id)
    spec = chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=chaincode_pb2.ChaincodeSpec(
        type=chaincode_pb2.ChaincodeSpec.NODE,  # what the official clients send; peers ignore it
        chaincode_id=cc_id,
        input=chaincode_pb2.ChaincodeInput(args=[function.encode("utf-8")] + [_as_bytes(a) for a in args]),
    ))
    ns = time.time_ns() if now_ns is None else now_ns
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel_id, tx_id=tx_id,
        timestamp=timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000),
        extension=proposal_pb2.ChaincodeHeaderExtension(chaincode_id=cc_id).SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=spec.SerializeToString(),
        TransientMap={k: _as_bytes(v) for k, v in (transient or {}).items()},
    )
    return tx_id, proposal_pb2.Proposal(header=header.SerializeToString(), payload=payload.SerializeToString())


def sign_proposal(identity: Identity, channel_id: str, chaincode_id: str, function: str,
                  args: Iterable[Arg] = (), transient: Mapping[str, bytes] | None = None) -> SignedProposal:
    """Build and sign a proposal."""
    tx_id, proposal = build_proposal(identity, channel_id, chaincode_id, function, args, transient)
    proposal_bytes = proposal.SerializeToString()
    signed = proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes, signature=identity.sign(proposal_bytes))
    return SignedProposal(tx_id=tx_id, channel_id=channel_id, signed=signed)


def result_from_envelope(envelope: common_pb2.Envelope) -> bytes:
    """The chaincode response payload inside a prepared (endorsed) transaction envelope."""
    payload = common_pb2.Payload.FromString(envelope.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    problems: list[str] = []
    for action in tx.actions:
        try:
            cap = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
            prp = proposal_response_pb2.ProposalResponsePayload.FromString(cap.action.proposal_response_payload)
            cc_action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
        except Exception as exc:  # noqa: BLE001 - protobuf DecodeError and friends
            problems.append(str(exc))
            continue
        return cc_action.response.payload
    raise ValueError(f"no proposal response in prepared transaction ({'; '.join(problems) or 'no actions'})")
