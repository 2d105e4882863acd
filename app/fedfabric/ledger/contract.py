"""Evaluate and submit transactions of one chaincode through the Gateway."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping

import grpc
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2

from .errors import CommitError, CommitStatusError, EndorseError, EvaluateError, GatewayError, SubmitError
from .proposal import Arg, result_from_envelope, sign_proposal

if TYPE_CHECKING:
    from .network import Network

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitStatus:
    """Outcome of a committed transaction."""

    tx_id: str
    code: str
    block_number: int
    successful: bool


@dataclass(frozen=True)
class SubmitResult:
    """A successfully committed transaction and its chaincode result."""

    result: bytes
    tx_id: str
    block_number: int
    status: str


def validation_code_name(code: int) -> str:
    """``TxValidationCode`` name for ``code`` (``CODE_<n>`` if unknown)."""
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return f"CODE_{code}"


def _deadline(timeout: float | None, default: float) -> float:
    return timeout if timeout is not None else default


class SubmittedTransaction:
    """A transaction accepted by the orderer; ``get_status`` waits for its commit."""

    def __init__(self, network: "Network", tx_id: str, result: bytes) -> None:
        self._network = network
        self.tx_id = tx_id
        self.result = result
        self._status: CommitStatus | None = None

    def get_status(self, timeout: float | None = None) -> CommitStatus:
        """Block until the transaction is committed (the signed CommitStatus request).

        ``timeout`` (seconds, default ``Timeouts.commit_status``) bounds the wait; running out
        raises :class:`CommitStatusError` naming the peer and the transaction (``timed_out``).
        """
        if self._status is not None:
            return self._status
        gw = self._network.gateway
        wait = _deadline(timeout, gw.timeouts.commit_status)
        request = gateway_pb2.CommitStatusRequest(transaction_id=self.tx_id, channel_id=self._network.channel_id,
                                                  identity=gw.identity.serialized()).SerializeToString()
        signed = gateway_pb2.SignedCommitStatusRequest(request=request, signature=gw.identity.sign(request))
        try:
            resp = gw.stub.CommitStatus(signed, timeout=wait)
        except grpc.RpcError as err:
            raise CommitStatusError.from_rpc_error(err, self.tx_id, gw.endpoint, wait) from None
        code = validation_code_name(resp.result)
        self._status = CommitStatus(self.tx_id, code, resp.block_number, resp.result == transaction_pb2.VALID)
        return self._status


class Contract:
    """Transactions of chaincode ``chaincode_id`` (optionally of one named contract in it)."""

    def __init__(self, network: "Network", chaincode_id: str, contract_name: str | None = None) -> None:
        self.network = network
        self.chaincode_id = chaincode_id
        self.contract_name = contract_name

    def _fn(self, function: str) -> str:
        return f"{self.contract_name}:{function}" if self.contract_name else function

    def _rpc(self, method: str, request, timeout: float, error: type[GatewayError], tx_id: str):
        """Call a unary Gateway method; a gRPC failure becomes ``error`` naming the peer and tx."""
        gw = self.network.gateway
        try:
            return getattr(gw.stub, method)(request, timeout=timeout)
        except grpc.RpcError as err:
            raise error.from_rpc_error(err, tx_id, gw.endpoint, timeout) from None

    def evaluate(self, function: str, args: Iterable[Arg] = (), transient: Mapping[str, bytes] | None = None,
                 endorsing_orgs: list[str] | None = None, timeout: float | None = None) -> bytes:
        """Run a query on a peer (nothing is ordered); the chaincode's response payload."""
        gw = self.network.gateway
        sp = sign_proposal(gw.identity, self.network.channel_id, self.chaincode_id, self._fn(function), args, transient)
        req = gateway_pb2.EvaluateRequest(transaction_id=sp.tx_id, channel_id=sp.channel_id,
                                          proposed_transaction=sp.signed, target_organizations=endorsing_orgs or [])
        resp = self._rpc("Evaluate", req, _deadline(timeout, gw.timeouts.evaluate), EvaluateError, sp.tx_id)
        return resp.result.payload

    def submit_async(self, function: str, args: Iterable[Arg] = (), transient: Mapping[str, bytes] | None = None,
                     endorsing_orgs: list[str] | None = None, timeout: float | None = None) -> SubmittedTransaction:
        """Endorse, sign and send to ordering; returns without waiting for the commit.

        ``timeout`` bounds the endorse and the submit call each (defaults from the Gateway).
        """
        gw = self.network.gateway
        sp = sign_proposal(gw.identity, self.network.channel_id, self.chaincode_id, self._fn(function), args, transient)
        req = gateway_pb2.EndorseRequest(transaction_id=sp.tx_id, channel_id=sp.channel_id,
                                         proposed_transaction=sp.signed, endorsing_organizations=endorsing_orgs or [])
        endorsed = self._rpc("Endorse", req, _deadline(timeout, gw.timeouts.endorse), EndorseError, sp.tx_id)
        envelope = endorsed.prepared_transaction
        try:
            result = result_from_envelope(envelope)
        except Exception as exc:  # noqa: BLE001
            raise EndorseError(f"unreadable prepared transaction: {exc}", tx_id=sp.tx_id) from None
        envelope.signature = gw.identity.sign(envelope.payload)
        sub = gateway_pb2.SubmitRequest(transaction_id=sp.tx_id, channel_id=sp.channel_id, prepared_transaction=envelope)
        self._rpc("Submit", sub, _deadline(timeout, gw.timeouts.submit), SubmitError, sp.tx_id)
        log.debug("submitted %s on %s/%s", sp.tx_id, self.network.channel_id, self.chaincode_id)
        return SubmittedTransaction(self.network, sp.tx_id, result)

    def submit(self, function: str, args: Iterable[Arg] = (), transient: Mapping[str, bytes] | None = None,
               endorsing_orgs: list[str] | None = None, timeout: float | None = None,
               commit_timeout: float | None = None) -> SubmitResult:
        """Endorse → sign → submit → wait for commit; raises :class:`CommitError` if invalid.

        ``timeout`` bounds the endorse and the submit call each; ``commit_timeout`` bounds the
        wait for the commit status (default: the Gateway's ``Timeouts.commit_status``). A commit
        wait that runs out raises :class:`CommitStatusError` (``timed_out``) naming the peer and
        the transaction, which may still commit later.
        """
        pending = self.submit_async(function, args, transient, endorsing_orgs, timeout)
        status = pending.get_status(commit_timeout)
        if not status.successful:
            raise CommitError(status.tx_id, status.code, status.block_number)
        return SubmitResult(pending.result, pending.tx_id, status.block_number, status.code)

    def __repr__(self) -> str:
        return f"Contract({self.network.channel_id!r}, {self.chaincode_id!r}, {self.contract_name!r})"
