"""A Fabric channel seen through a Gateway: contracts, chaincode events, ledger queries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .contract import Contract
from .events import ChaincodeEventStream

if TYPE_CHECKING:
    from .gateway import Gateway
    from .qscc import Qscc


class Network:
    """One channel (e.g. ``fl``) reachable through a :class:`Gateway`."""

    def __init__(self, gateway: "Gateway", channel_id: str) -> None:
        self.gateway = gateway
        self.channel_id = channel_id

    def get_contract(self, chaincode_id: str, contract_name: str | None = None) -> Contract:
        """A contract of ``chaincode_id``; ``contract_name`` prefixes functions as ``name:fn``."""
        return Contract(self, chaincode_id, contract_name)

    def chaincode_events(self, chaincode_id: str, start_block: int | None = None,
                         timeout: float | None = None, after_tx_id: str | None = None,
                         reconnect: bool = True) -> ChaincodeEventStream:
        """Events emitted by valid transactions of ``chaincode_id``.

        From ``start_block`` (default: the next block committed), skipping events up to and
        including ``after_tx_id`` in that block. ``timeout`` ends the iteration after that many
        seconds; ``reconnect`` resumes from the last delivered event if the peer goes away.
        The returned stream is an iterator, a context manager and has ``close()``.
        """
        return ChaincodeEventStream(self.gateway, self.channel_id, chaincode_id, start_block=start_block,
                                    after_tx_id=after_tx_id, timeout=timeout, reconnect=reconnect)

    def qscc(self, timeout: float | None = None) -> "Qscc":
        """Block and transaction queries (system chaincode ``qscc``) on this channel.

        ``timeout`` bounds each query (default: the Gateway's ``Timeouts.evaluate``).
        """
        from .qscc import Qscc
        return Qscc(self, timeout)

    def __repr__(self) -> str:
        return f"Network({self.channel_id!r})"
