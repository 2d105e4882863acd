"""An in-process fake of the peer's Gateway gRPC service that checks what the client sends."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from typing import Callable

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from fedfabric.ledger._rpcstatus import STATUS_DETAILS_KEY, encode_status
from fedfabric.ledger.identity import CURVE_ORDERS

from .builders import prepared_envelope

PEER = ("127.0.0.1:7051", "Org1MSP")


class ChaincodeFailure(Exception):
    """Raised by a fake chaincode handler: becomes a Gateway error with an ErrorDetail."""


def verify(creator: bytes, data: bytes, signature: bytes) -> None:
    """Raise unless ``signature`` is a low-S signature of ``data`` by the creator's certificate."""
    ident = identities_pb2.SerializedIdentity.FromString(creator)
    key = x509.load_pem_x509_certificate(ident.id_bytes).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    _, s = decode_dss_signature(signature)
    if s > CURVE_ORDERS[key.curve.name] // 2:
        raise ValueError("high-S signature")


def abort_with_details(context: grpc.ServicerContext, code: grpc.StatusCode, message: str,
                       details: list[tuple[str, str, str]]) -> None:
    blobs = [("type.googleapis.com/gateway.ErrorDetail",
              gateway_pb2.ErrorDetail(address=a, msp_id=m, message=t).SerializeToString()) for a, m, t in details]
    context.set_trailing_metadata([(STATUS_DETAILS_KEY, encode_status(code.value[0], message, blobs))])
    context.abort(code, message)


def decode_proposal(signed: proposal_pb2.SignedProposal) -> dict:
    proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    ch = common_pb2.ChannelHeader.FromString(header.channel_header)
    sh = common_pb2.SignatureHeader.FromString(header.signature_header)
    cpp = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input).chaincode_spec
    return {"proposal": proposal, "channel_header": ch, "creator": sh.creator, "nonce": sh.nonce,
            "chaincode": spec.chaincode_id.name, "args": list(spec.input.args), "transient": dict(cpp.TransientMap)}


Handler = Callable[[str, list[bytes], dict[str, bytes]], bytes]


class FakeGateway(gateway_pb2_grpc.GatewayServicer):
    """Configurable fake: chaincode handler, commit codes, event blocks, injected failures."""

    def __init__(self) -> None:
        self.port = 0
        self.calls: dict[str, list] = {"Evaluate": [], "Endorse": [], "Submit": [], "CommitStatus": [],
                                       "ChaincodeEvents": []}
        self.chaincode: Handler = self.default_chaincode
        self.submitted: dict[str, common_pb2.Envelope] = {}
        self.commit_code = transaction_pb2.VALID
        self.commit_block = 7
        self.commit_delay = 0.0
        self.submit_failure: tuple[grpc.StatusCode, str, list] | None = None
        self.event_blocks: list[tuple[int, list[chaincode_event_pb2.ChaincodeEvent]]] = []
        self.next_commit_block = 0
        self.events_hold = False
        self.events_fail_after: int | None = None  # responses in the first stream before UNAVAILABLE
        self.on_events_failure: Callable[[], None] | None = None  # runs when the first stream fails
        self.chain_info_failure: grpc.StatusCode | None = None
        self.event_event = threading.Event()

    def default_chaincode(self, fn: str, args: list[bytes], transient: dict[str, bytes]) -> bytes:
        """Echoes ``ok:<fn>:<args>``; qscc ``GetChainInfo`` answers ``next_commit_block`` as height."""
        if fn == "GetChainInfo":
            if self.chain_info_failure is not None:
                raise ChaincodeFailure(f"chain info unavailable ({self.chain_info_failure.name})")
            return ledger_pb2.BlockchainInfo(height=self.next_commit_block).SerializeToString()
        return b"ok:" + fn.encode() + b":" + b",".join(args)

    # -- helpers ------------------------------------------------------------------------------
    def _proposal(self, req, context) -> dict:
        p = decode_proposal(req.proposed_transaction)
        try:
            verify(p["creator"], req.proposed_transaction.proposal_bytes, req.proposed_transaction.signature)
        except Exception as exc:  # noqa: BLE001
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"bad proposal signature: {exc}")
        if req.transaction_id != p["channel_header"].tx_id or req.channel_id != p["channel_header"].channel_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request ids do not match the proposal")
        return p

    def _run(self, p: dict, context, what: str) -> bytes:
        try:
            return self.chaincode(p["args"][0].decode(), p["args"][1:], p["transient"])
        except ChaincodeFailure as exc:
            abort_with_details(context, grpc.StatusCode.ABORTED,
                               f"failed to {what} transaction, see attached details for more info",
                               [(*PEER, f"chaincode response 500, {exc}")])
        raise AssertionError("unreachable")

    # -- service ------------------------------------------------------------------------------
    def Evaluate(self, request, context):
        p = self._proposal(request, context)
        self.calls["Evaluate"].append((request, p))
        result = self._run(p, context, "evaluate")
        return gateway_pb2.EvaluateResponse(result=proposal_response_pb2.Response(status=200, payload=result))

    def Endorse(self, request, context):
        p = self._proposal(request, context)
        self.calls["Endorse"].append((request, p))
        result = self._run(p, context, "endorse")
        return gateway_pb2.EndorseResponse(prepared_transaction=prepared_envelope(p["proposal"], result))

    def Submit(self, request, context):
        env = request.prepared_transaction
        payload = common_pb2.Payload.FromString(env.payload)
        sh = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        try:
            verify(sh.creator, env.payload, env.signature)
        except Exception as exc:  # noqa: BLE001
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"bad envelope signature: {exc}")
        self.calls["Submit"].append(request)
        if self.submit_failure:
            code, msg, details = self.submit_failure
            abort_with_details(context, code, msg, details)
        self.submitted[request.transaction_id] = env
        return gateway_pb2.SubmitResponse()

    def CommitStatus(self, request, context):
        req = gateway_pb2.CommitStatusRequest.FromString(request.request)
        try:
            verify(req.identity, request.request, request.signature)
        except Exception as exc:  # noqa: BLE001
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"bad commit status signature: {exc}")
        self.calls["CommitStatus"].append(req)
        if req.transaction_id not in self.submitted:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown transaction {req.transaction_id}")
        if self.commit_delay:
            time.sleep(self.commit_delay)
        return gateway_pb2.CommitStatusResponse(result=self.commit_code, block_number=self.commit_block)

    def ChaincodeEvents(self, request, context):
        req = gateway_pb2.ChaincodeEventsRequest.FromString(request.request)
        try:
            verify(req.identity, request.request, request.signature)
        except Exception as exc:  # noqa: BLE001
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"bad events request signature: {exc}")
        self.calls["ChaincodeEvents"].append(req)
        first_call = len(self.calls["ChaincodeEvents"]) == 1
        pos = req.start_position
        start = pos.specified.number if pos.WhichOneof("Type") == "specified" else self.next_commit_block
        sent = 0
        for number, events in self.event_blocks:
            if number < start:
                continue
            chosen = [e for e in events if e.chaincode_id == req.chaincode_id]
            if number == start and req.after_transaction_id:
                ids = [e.tx_id for e in chosen]
                if req.after_transaction_id in ids:
                    chosen = chosen[ids.index(req.after_transaction_id) + 1:]
            if not chosen:
                continue
            if first_call and self.events_fail_after is not None and sent >= self.events_fail_after:
                if self.on_events_failure is not None:
                    self.on_events_failure()
                context.abort(grpc.StatusCode.UNAVAILABLE, "peer going away")
            yield gateway_pb2.ChaincodeEventsResponse(events=chosen, block_number=number)
            sent += 1
        self.event_event.set()
        while self.events_hold and context.is_active():
            time.sleep(0.02)


def serve(servicer: FakeGateway, tls: dict | None = None, port: int = 0) -> tuple[grpc.Server, int]:
    """Start ``servicer`` on 127.0.0.1:``port`` (TLS with ``tls`` = {'cert','key'} paths); (server, port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    gateway_pb2_grpc.add_GatewayServicer_to_server(servicer, server)
    if tls:
        creds = grpc.ssl_server_credentials([(tls["key"].read_bytes(), tls["cert"].read_bytes())])
        bound = server.add_secure_port(f"127.0.0.1:{port}", creds)
    else:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if not bound or (port and bound != port):
        raise RuntimeError(f"could not bind fake gateway to 127.0.0.1:{port}")
    server.start()
    return server, bound
