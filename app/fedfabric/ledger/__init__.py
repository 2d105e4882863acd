"""Fabric Gateway client: ``Gateway → Network → Contract``, chaincode events, qscc queries.

Speaks the Gateway gRPC protocol with the official ``hyperledger-fabric-protos`` bindings.
"""

from .contract import CommitStatus, Contract, SubmitResult, SubmittedTransaction
from .errors import (CommitError, CommitStatusError, EndorseError, ErrorDetail, EvaluateError, EventsError,
                     GatewayError, SubmitError)
from .events import ChaincodeEvent, ChaincodeEventStream
from .gateway import Gateway, Timeouts
from .identity import Identity, IdentityError
from .network import Network
from .qscc import Qscc

__all__ = [
    "ChaincodeEvent", "ChaincodeEventStream", "CommitError", "CommitStatus", "CommitStatusError", "Contract",
    "EndorseError", "ErrorDetail", "EvaluateError", "EventsError", "Gateway", "GatewayError", "Identity",
    "IdentityError", "Network", "Qscc", "SubmitError", "SubmitResult", "SubmittedTransaction", "Timeouts",
]
