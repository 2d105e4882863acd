"""Ledger queries through the query system chaincode (``qscc``) on the connected peer."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.peer import transaction_pb2

from .blocks import decode_block, decode_envelope, validation_name
from .contract import SubmittedTransaction, _deadline
from .errors import GatewayError

if TYPE_CHECKING:
    from .network import Network

log = logging.getLogger(__name__)


class Qscc:
    """``GetChainInfo``, ``GetBlockByNumber``, ``GetTransactionByID``, ``GetBlockByTxID``.

    ``timeout`` (seconds) bounds each call; default: the Gateway's ``Timeouts.evaluate``.
    """

    def __init__(self, network: "Network", timeout: float | None = None) -> None:
        self.network = network
        self._contract = network.get_contract("qscc")
        self._timeout = timeout

    def _query(self, function: str, *args: str) -> bytes:
        return self._contract.evaluate(function, args=[self.network.channel_id, *args], timeout=self._timeout)

    def chain_info(self) -> dict:
        """Height and the current/previous block hashes (hex)."""
        info = ledger_pb2.BlockchainInfo.FromString(self._query("GetChainInfo"))
        return {"height": info.height, "current_block_hash": info.currentBlockHash.hex(),
                "previous_block_hash": info.previousBlockHash.hex()}

    def raw_block(self, number: int) -> common_pb2.Block:
        """The block protobuf itself."""
        return common_pb2.Block.FromString(self._query("GetBlockByNumber", str(int(number))))

    def block(self, number: int) -> dict:
        """Decoded block ``number`` (see :func:`fedfabric.ledger.blocks.decode_block`)."""
        return decode_block(self.raw_block(number))

    def block_by_tx_id(self, tx_id: str) -> dict:
        """Decoded block that contains ``tx_id``."""
        return decode_block(common_pb2.Block.FromString(self._query("GetBlockByTxID", tx_id)))

    def transaction(self, tx_id: str) -> dict:
        """Decoded transaction with its validation code and, when found, its block number.

        qscc has no call that answers only the block number of a transaction: its
        ``ProcessedTransaction`` has none, and ``GetBlockByTxID`` returns the whole block (up to
        the channel's block size). The cheapest source is the Gateway's ``CommitStatus``: for a
        committed transaction the peer answers at once from its transaction index (validation
        code and block number). ``GetBlockByTxID`` is only the fallback if that call fails.
        """
        processed = transaction_pb2.ProcessedTransaction.FromString(self._query("GetTransactionByID", tx_id))
        tx = decode_envelope(processed.transactionEnvelope.SerializeToString())
        tx["validation_code"] = validation_name(processed.validationCode)
        tx["block_number"] = self._block_number(tx_id)
        return tx

    def _block_number(self, tx_id: str) -> int | None:
        """Number of the block holding ``tx_id``, known to be committed on this peer (else ``None``)."""
        timeout = _deadline(self._timeout, self.network.gateway.timeouts.evaluate)
        try:
            return SubmittedTransaction(self.network, tx_id, b"").get_status(timeout).block_number
        except GatewayError as err:
            log.debug("commit status of %s not available (%s); reading its block", tx_id, err.code)
        try:
            return common_pb2.Block.FromString(self._query("GetBlockByTxID", tx_id)).header.number
        except GatewayError as err:
            log.debug("block of %s not available: %s", tx_id, err.code)
            return None
