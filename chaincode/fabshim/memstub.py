"""MemoryStub: an in-memory ledger with the ChaincodeStub API, for fast unit tests.

Fabric semantics kept: reads see committed state only (no read-your-writes), writes are
buffered per transaction and committed only if the transaction succeeds, one event per
transaction, key history, private data with hashes and purge, key-level validation parameters.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional

from fabric_protos.msp import identities_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from .compositekey import MAX_RUNE, create_composite_key, split_composite_key
from .stub import ArgsAccess, KeyModification, QueryMetadata, Response

_DELETED = object()


def _need_collection(collection: str) -> None:
    if not collection:  # the live stub (and Go) refuse "" for every private-data call
        raise ValueError("collection must not be an empty string")


class _Rows:
    """A finished query result: iterator of ``(key, value)`` and a context manager."""

    def __init__(self, rows: list) -> None:
        self._it = iter(rows)

    def __iter__(self) -> "_Rows":
        return self

    def __next__(self):
        return next(self._it)

    def close(self) -> None:
        self._it = iter(())

    def __enter__(self) -> "_Rows":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Event:
    tx_id: str
    name: str
    payload: bytes

    def json(self) -> dict:
        return json.loads(self.payload)


@dataclass
class _Tx:
    """Everything one transaction proposes."""
    writes: dict = field(default_factory=dict)             # key -> bytes | _DELETED
    pvt_writes: dict = field(default_factory=dict)         # (coll, key) -> bytes | _DELETED
    purges: list = field(default_factory=list)             # (coll, key)
    vparams: dict = field(default_factory=dict)            # key -> bytes
    event: Optional[tuple[str, bytes]] = None
    reads: set = field(default_factory=set)                # keys read by point; ("pvt", coll, key) for private
    ranges: list = field(default_factory=list)             # (start, end) of range reads


@dataclass(frozen=True)
class RWSet:
    """What a committed transaction read and wrote, as the peer's validator would compare it: a write of
    one transaction that another concurrent one read (by point or in a range) invalidates the latter."""

    tx_id: str
    reads: frozenset
    ranges: tuple
    writes: frozenset

    def conflicts_with(self, earlier: "RWSet") -> bool:
        """True if ``earlier``, ordered first in the same block, would invalidate this transaction."""
        if self.reads & earlier.writes:
            return True
        return any(isinstance(k, str) and s <= k and (not e or k < e) for k in earlier.writes for s, e in self.ranges)


def serialized_identity(msp_id: str, cert_pem: bytes) -> bytes:
    """SerializedIdentity bytes, as the peer hands to the chaincode."""
    return identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=cert_pem).SerializeToString()


class MemoryStub(ArgsAccess):
    """The stub API over dicts; ``run``/``transaction`` drive one transaction at a time."""

    def __init__(self, channel_id: str = "fl") -> None:
        self.channel_id = channel_id
        self.tx_id = ""
        self.state: dict[str, bytes] = {}
        self.private: dict[str, dict[str, bytes]] = {}
        self.vparams: dict[str, bytes] = {}
        self.history: dict[str, list[KeyModification]] = {}
        self.events: list[Event] = []
        self.purged: list[tuple[str, str]] = []
        self.rw_log: list[RWSet] = []
        self.block = 0
        self._args: list[bytes] = []
        self._creator = b""
        self._ts = Timestamp()
        self._transient: dict[str, bytes] = {}
        self._tx: Optional[_Tx] = None
        self._seq = 0

    # ---- test helpers
    @contextmanager
    def transaction(self, creator: bytes, args: list = (), seconds: int = 0,
                    transient: Optional[dict[str, bytes]] = None, tx_id: str = "") -> Iterator["MemoryStub"]:
        """Run one transaction; its writes commit only if the block exits without an exception."""
        self._seq += 1
        self.tx_id = tx_id or hashlib.sha256(f"tx{self._seq}".encode()).hexdigest()
        self._args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self._creator = creator
        self._ts = Timestamp(seconds=int(seconds))
        self._transient = dict(transient or {})
        self._tx = _Tx()
        try:
            yield self
        except BaseException:
            self._tx = None
            raise
        self._commit()

    def run(self, chaincode, creator: bytes, args: list, seconds: int = 0,
            transient: Optional[dict[str, bytes]] = None, tx_id: str = "") -> Response:
        """Invoke ``chaincode`` (a fabshim ``Chaincode``) as one transaction; commit only on status 200."""
        class _Rejected(Exception):
            pass
        resp = None
        try:
            with self.transaction(creator, args, seconds, transient, tx_id):
                resp = chaincode.invoke(self)
                if resp.status != 200:
                    raise _Rejected()
        except _Rejected:
            pass
        return resp

    def _commit(self) -> None:
        tx, self._tx = self._tx, None
        self.block += 1
        for key, v in sorted(tx.writes.items()):
            is_del = v is _DELETED
            if is_del:
                self.state.pop(key, None)
            else:
                self.state[key] = v
            ts = Timestamp()
            ts.CopyFrom(self._ts)
            self.history.setdefault(key, []).append(
                KeyModification(self.tx_id, b"" if is_del else v, ts, is_del))
        for (coll, key), v in sorted(tx.pvt_writes.items()):
            if v is _DELETED:
                self.private.get(coll, {}).pop(key, None)
            else:
                self.private.setdefault(coll, {})[key] = v
        for coll, key in tx.purges:
            self.private.get(coll, {}).pop(key, None)
            self.purged.append((coll, key))
        self.vparams.update(tx.vparams)
        writes = set(tx.writes) | set(tx.vparams) | {("pvt", c, k) for c, k in tx.pvt_writes} | \
            {("pvt", c, k) for c, k in tx.purges}
        self.rw_log.append(RWSet(self.tx_id, frozenset(tx.reads), tuple(tx.ranges), frozenset(writes)))
        if tx.event is not None:
            self.events.append(Event(self.tx_id, tx.event[0], tx.event[1]))

    def _cur(self) -> _Tx:
        if self._tx is None:
            raise RuntimeError("MemoryStub: no transaction in progress (use stub.transaction(...))")
        return self._tx

    # ---- transaction facts
    def get_tx_timestamp(self) -> Timestamp:
        ts = Timestamp()
        ts.CopyFrom(self._ts)
        return ts

    def get_creator(self) -> bytes:
        return self._creator

    def get_transient(self) -> dict[str, bytes]:
        return dict(self._transient)

    # ---- public state
    def get_state(self, key: str) -> Optional[bytes]:
        self._cur().reads.add(key)
        return self.state.get(key)

    def put_state(self, key: str, value: bytes) -> None:
        if not key:
            raise ValueError("key must not be an empty string")
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError("value must be bytes")
        self._cur().writes[key] = bytes(value)

    def del_state(self, key: str) -> None:
        self._cur().writes[key] = _DELETED

    def _range_rows(self, start: str, end: str) -> list[tuple[str, bytes]]:
        self._cur().ranges.append((start, end))
        return [(k, self.state[k]) for k in sorted(self.state)
                if k >= start and (not end or k < end)]

    def get_state_by_range(self, start: str, end: str) -> _Rows:
        # like the peer: an empty start key means "\x01", so composite keys ("\x00"...) stay out
        return _Rows(self._range_rows(start or "\x01", end))

    def get_state_by_partial_composite_key(self, object_type: str, attrs: list[str]) -> _Rows:
        k = create_composite_key(object_type, list(attrs))
        return _Rows(self._range_rows(k, k + MAX_RUNE))

    def get_state_by_range_with_pagination(self, start: str, end: str, page_size: int,
                                           bookmark: str = "") -> tuple[list[tuple[str, bytes]], QueryMetadata]:
        rows = self._range_rows(bookmark or start or "\x01", end)
        page, rest = rows[:page_size], rows[page_size:]
        return page, QueryMetadata(len(page), rest[0][0] if rest else "")

    def get_state_by_partial_composite_key_with_pagination(self, object_type: str, attrs: list[str],
                                                           page_size: int, bookmark: str = ""):
        k = create_composite_key(object_type, list(attrs))
        return self.get_state_by_range_with_pagination(k, k + MAX_RUNE, page_size, bookmark)

    create_composite_key = staticmethod(create_composite_key)
    split_composite_key = staticmethod(split_composite_key)

    def get_history_for_key(self, key: str) -> _Rows:
        self._cur()
        return _Rows(list(reversed(self.history.get(key, []))))  # newest first, like the peer

    # ---- private data
    def get_private_data(self, collection: str, key: str) -> Optional[bytes]:
        _need_collection(collection)
        self._cur().reads.add(("pvt", collection, key))
        return self.private.get(collection, {}).get(key)

    def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        _need_collection(collection)
        self._cur().pvt_writes[(collection, key)] = bytes(value)

    def del_private_data(self, collection: str, key: str) -> None:
        _need_collection(collection)
        self._cur().pvt_writes[(collection, key)] = _DELETED

    def get_private_data_hash(self, collection: str, key: str) -> Optional[bytes]:
        v = self.get_private_data(collection, key)
        return None if v is None else hashlib.sha256(v).digest()

    def purge_private_data(self, collection: str, key: str) -> None:
        _need_collection(collection)
        self._cur().purges.append((collection, key))

    # ---- state-based endorsement
    def set_state_validation_parameter(self, key: str, ep: bytes) -> None:
        self._cur().vparams[key] = bytes(ep)

    def get_state_validation_parameter(self, key: str) -> Optional[bytes]:
        self._cur()
        return self.vparams.get(key)

    # ---- events and chaincode-to-chaincode
    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ValueError("event name can not be empty string")
        self._cur().event = (name, bytes(payload))

    def invoke_chaincode(self, name: str, args: list[bytes], channel: str = "") -> Response:
        return Response(500, f"MemoryStub: chaincode '{name}' is not available in memory")
