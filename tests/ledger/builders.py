"""Hand-built Fabric protobufs for tests: prepared transactions, events, blocks."""

from __future__ import annotations

import hashlib

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_event_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2


def rwset(namespace: str, writes: list[tuple[str, bool]], private: list[tuple[str, bytes]] = ()) -> bytes:
    """Serialized TxReadWriteSet writing ``(key, is_delete)`` in ``namespace``."""
    kv = kv_rwset_pb2.KVRWSet(writes=[kv_rwset_pb2.KVWrite(key=k, is_delete=d, value=b"" if d else b"v")
                                       for k, d in writes])
    ns = rwset_pb2.NsReadWriteSet(namespace=namespace, rwset=kv.SerializeToString())
    for coll, key_hash in private:
        hashed = kv_rwset_pb2.HashedRWSet(hashed_writes=[kv_rwset_pb2.KVWriteHash(key_hash=key_hash)])
        ns.collection_hashed_rwset.add(collection_name=coll, hashed_rwset=hashed.SerializeToString())
    return rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV, ns_rwset=[ns]).SerializeToString()


def prepared_envelope(proposal: proposal_pb2.Proposal, result: bytes, status: int = 200,
                      event: tuple[str, bytes] | None = None, results: bytes = b"",
                      endorser_msps: tuple[str, ...] = ("Org1MSP",)) -> common_pb2.Envelope:
    """The unsigned transaction envelope a Gateway returns from Endorse for ``proposal``."""
    header = common_pb2.Header.FromString(proposal.header)
    ch = common_pb2.ChannelHeader.FromString(header.channel_header)
    cc_id = proposal_pb2.ChaincodeHeaderExtension.FromString(ch.extension).chaincode_id
    cpp = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    persisted = proposal_pb2.ChaincodeProposalPayload(input=cpp.input)  # transient never reaches the ledger
    ev = b""
    if event is not None:
        ev = chaincode_event_pb2.ChaincodeEvent(chaincode_id=cc_id.name, tx_id=ch.tx_id, event_name=event[0],
                                                payload=event[1]).SerializeToString()
    action = proposal_pb2.ChaincodeAction(
        results=results, events=ev, chaincode_id=cc_id,
        response=proposal_response_pb2.Response(status=status, payload=result))
    prp = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=hashlib.sha256(proposal.header + proposal.payload).digest(), extension=action.SerializeToString())
    endorsements = [proposal_response_pb2.Endorsement(
        endorser=identities_pb2.SerializedIdentity(mspid=m, id_bytes=b"cert").SerializeToString(), signature=b"sig")
        for m in endorser_msps]
    cap = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=persisted.SerializeToString(),
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=prp.SerializeToString(),
                                                       endorsements=endorsements))
    tx = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(
        header=header.signature_header, payload=cap.SerializeToString())])
    payload = common_pb2.Payload(header=header, data=tx.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


def block(number: int, previous_hash: bytes, envelopes: list[bytes], flags: bytes) -> common_pb2.Block:
    """A block with a correct data hash and TRANSACTIONS_FILTER metadata."""
    blk = common_pb2.Block(header=common_pb2.BlockHeader(
        number=number, previous_hash=previous_hash, data_hash=hashlib.sha256(b"".join(envelopes)).digest()))
    blk.data.data.extend(envelopes)
    blk.metadata.metadata.extend([b"", b"", flags, b""])
    return blk
