"""Errors raised by the Gateway client, with the per-peer details the Gateway attaches."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from fabric_protos.gateway import gateway_pb2

from ._rpcstatus import STATUS_DETAILS_KEY, decode_details

log = logging.getLogger(__name__)

_ERROR_DETAIL_TYPE = "gateway.ErrorDetail"


@dataclass(frozen=True)
class ErrorDetail:
    """One peer's or orderer's part of a Gateway failure."""

    address: str
    msp_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} [peer {self.address} ({self.msp_id})]"


class GatewayError(Exception):
    """A failed Gateway call. ``code`` is the ``grpc.StatusCode`` (``None`` if not from gRPC).

    ``endpoint`` is the Gateway peer that was called (named in the message when the Gateway
    attached no per-peer details); ``timeout`` the deadline in seconds the call had.
    """

    operation = "gateway call"

    def __init__(self, message: str, code: grpc.StatusCode | str | None = None,
                 details: list[ErrorDetail] | None = None, tx_id: str | None = None,
                 endpoint: str | None = None, timeout: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = list(details or [])
        self.tx_id = tx_id
        self.endpoint = endpoint or None
        self.timeout = timeout

    def __str__(self) -> str:
        if self.details:
            body = "; ".join(str(d) for d in self.details)
        else:
            code = getattr(self.code, "name", self.code)
            body = f"{code}: {self.message}" if code else self.message
            if self.endpoint:
                body += f" [peer {self.endpoint}]"
        return f"{self.operation} failed: {body}"

    @property
    def timed_out(self) -> bool:
        """True if the call ran out of its deadline."""
        return self.code is grpc.StatusCode.DEADLINE_EXCEEDED

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError, tx_id: str | None = None, endpoint: str | None = None,
                       timeout: float | None = None) -> "GatewayError":
        """Wrap a gRPC error, extracting ``gateway.ErrorDetail`` from the status details."""
        code = err.code() if hasattr(err, "code") else None
        message = err.details() if hasattr(err, "details") else str(err)
        if code is grpc.StatusCode.DEADLINE_EXCEEDED and (timeout is not None or tx_id):
            message = deadline_message(tx_id, timeout)
        return cls(message or "", code, error_details(err), tx_id=tx_id, endpoint=endpoint, timeout=timeout)


def deadline_message(tx_id: str | None, timeout: float | None) -> str:
    """What timed out: 'no answer within 5s for transaction <id>'."""
    within = f" within {timeout:g}s" if timeout is not None else ""
    what = f" for transaction {tx_id}" if tx_id else ""
    return f"no answer{within}{what}"


class EvaluateError(GatewayError):
    """Evaluating a transaction failed (chaincode error, no peer available, …)."""

    operation = "evaluate"


class EndorseError(GatewayError):
    """Endorsing a transaction proposal failed."""

    operation = "endorse"


class SubmitError(GatewayError):
    """Sending the endorsed transaction to the orderer failed."""

    operation = "submit"


class CommitStatusError(GatewayError):
    """Obtaining the commit status of a submitted transaction failed (e.g. timed out)."""

    operation = "commit status"


class EventsError(GatewayError):
    """The chaincode event stream failed."""

    operation = "chaincode events"


class CommitError(GatewayError):
    """A transaction was committed to a block but marked invalid.

    ``code`` is the validation code name, e.g. ``MVCC_READ_CONFLICT``.
    """

    operation = "commit"

    def __init__(self, tx_id: str, code: str, block_number: int | None = None) -> None:
        where = f" in block {block_number}" if block_number is not None else ""
        super().__init__(f"transaction {tx_id} committed as invalid ({code}){where}",
                         code=code, tx_id=tx_id)
        self.validation_code = code
        self.block_number = block_number

    def __str__(self) -> str:
        return f"{self.operation} failed: {self.message}"


def error_details(err: grpc.RpcError) -> list[ErrorDetail]:
    """``gateway.ErrorDetail`` entries from a gRPC error's ``grpc-status-details-bin`` trailer."""
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    out: list[ErrorDetail] = []
    for key, value in trailers or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        for type_url, blob in decode_details(value):
            if type_url.rsplit("/", 1)[-1] != _ERROR_DETAIL_TYPE:
                continue
            detail = gateway_pb2.ErrorDetail()
            try:
                detail.ParseFromString(blob)
            except Exception:  # noqa: BLE001
                log.debug("ignoring malformed ErrorDetail in status details")
                continue
            out.append(ErrorDetail(detail.address, detail.msp_id, detail.message))
    return out
