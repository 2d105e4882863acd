"""ChaincodeStub: the chaincode's view of one transaction."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import (chaincode_event_pb2, chaincode_pb2, chaincode_shim_pb2 as shim, proposal_pb2,
                                proposal_response_pb2)
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from .compositekey import MAX_RUNE, NS, create_composite_key, split_composite_key
from .echo import clip
from .errors import ShimError

if TYPE_CHECKING:
    from .handler import Handler

M = shim.ChaincodeMessage
VALIDATION_PARAMETER = "VALIDATION_PARAMETER"
EMPTY_KEY_SUBSTITUTE = "\x01"
ERROR_STATUS = 500  # shim.ERROR in the Go shim
_PROPOSAL_HEADER_TYPES = (common_pb2.ENDORSER_TRANSACTION, common_pb2.CONFIG)


def _validate_simple_keys(*keys: str) -> None:
    """Range bounds must stay out of the composite-key namespace (Go: validateSimpleKeys)."""
    for k in keys:
        if k and k[0] == NS:
            raise ShimError(f"first character of the key [{clip(repr(k))}] contains a null character which is not allowed")


def _parse(cls: type, raw: bytes, what: str):
    """``raw`` parsed as a ``cls`` message; bytes that do not parse raise ShimError (the peer sent them)."""
    msg = cls()
    try:
        msg.ParseFromString(raw)
    except DecodeError:
        raise ShimError(f"malformed {what} from the peer (not a {cls.DESCRIPTOR.name})") from None
    return msg


def _need_collection(collection: str) -> None:
    if not collection:
        raise ShimError("collection must not be an empty string")


@dataclass
class Response:
    status: int
    message: str = ""
    payload: bytes = b""


@dataclass
class QueryMetadata:
    fetched_records_count: int
    bookmark: str


@dataclass
class KeyModification:
    tx_id: str
    value: bytes
    timestamp: Timestamp
    is_delete: bool


class _QueryIterator:
    """Streams a peer query (QUERY_STATE_NEXT pages); also a context manager."""

    def __init__(self, stub: "ChaincodeStub", resp: shim.QueryResponse, conv: Callable[[bytes], object]) -> None:
        self._stub, self._resp, self._conv, self._i, self._closed = stub, resp, conv, 0, False

    def __iter__(self) -> "_QueryIterator":
        return self

    def __next__(self):
        while self._i >= len(self._resp.results):
            if not self._resp.has_more or self._closed:
                self.close()
                raise StopIteration
            self._resp = self._stub._query_next(self._resp.id)
            self._i = 0
        r = self._resp.results[self._i]
        self._i += 1
        return self._conv(r.resultBytes)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._resp.id:
                self._stub._query_close(self._resp.id)

    def __enter__(self) -> "_QueryIterator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _kv(b: bytes) -> tuple[str, bytes]:
    kv = _parse(kv_query_result_pb2.KV, b, "query result")
    return kv.key, kv.value


def _km(b: bytes) -> KeyModification:
    km = _parse(kv_query_result_pb2.KeyModification, b, "history entry")
    ts = Timestamp()
    ts.CopyFrom(km.timestamp)
    return KeyModification(km.tx_id, km.value, ts, km.is_delete)


class ArgsAccess:
    """Argument accessors shared by the live stub and the in-memory stub (``self._args``)."""

    _args: list[bytes]

    def get_args(self) -> list[bytes]:
        return list(self._args)

    def get_string_args(self) -> list[str]:
        return [a.decode("utf-8") for a in self._args]

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        a = self.get_string_args()
        return (a[0], a[1:]) if a else ("", [])


class ChaincodeStub(ArgsAccess):
    """Stub for one INIT/TRANSACTION; requests go to the peer through the handler."""

    def __init__(self, handler: "Handler", channel_id: str, tx_id: str, input_: chaincode_pb2.ChaincodeInput,
                 signed_proposal: Optional[proposal_pb2.SignedProposal]) -> None:
        self._h = handler
        self.channel_id = channel_id
        self.tx_id = tx_id
        self._args = list(input_.args)
        self._signed_proposal = signed_proposal
        self._event: Optional[chaincode_event_pb2.ChaincodeEvent] = None
        self._creator = b""
        self._transient: dict[str, bytes] = {}
        self._binding = b""
        self._timestamp = Timestamp()
        if signed_proposal is not None and signed_proposal.proposal_bytes:
            self._parse_proposal(signed_proposal)

    def _parse_proposal(self, sp: proposal_pb2.SignedProposal) -> None:
        prop = _parse(proposal_pb2.Proposal, sp.proposal_bytes, "signed proposal")
        if not prop.header:
            raise ShimError("failed to extract Proposal fields: proposal header is nil")
        hdr = _parse(common_pb2.Header, prop.header, "proposal header")
        ch = _parse(common_pb2.ChannelHeader, hdr.channel_header, "channel header")
        if ch.type not in _PROPOSAL_HEADER_TYPES:
            raise ShimError(f"invalid channel header type. Expected ENDORSER_TRANSACTION or CONFIG, received {ch.type}")
        sh = _parse(common_pb2.SignatureHeader, hdr.signature_header, "signature header")
        self._timestamp.CopyFrom(ch.timestamp)
        self._creator = sh.creator
        pp = _parse(proposal_pb2.ChaincodeProposalPayload, prop.payload, "proposal payload")
        self._transient = dict(pp.TransientMap)
        self._binding = hashlib.sha256(sh.nonce + sh.creator + ch.epoch.to_bytes(8, "little")).digest()

    # ---- transaction facts
    def get_tx_timestamp(self) -> Timestamp:
        return self._timestamp

    def get_creator(self) -> bytes:
        return self._creator

    def get_transient(self) -> dict[str, bytes]:
        return dict(self._transient)

    def get_signed_proposal(self) -> Optional[proposal_pb2.SignedProposal]:
        return self._signed_proposal

    def get_binding(self) -> bytes:
        return self._binding

    # ---- plumbing
    def _call(self, mtype: int, payload: bytes) -> bytes:
        return self._h.request(self.channel_id, self.tx_id, mtype, payload)

    def _query_next(self, qid: str) -> shim.QueryResponse:
        return _parse(shim.QueryResponse, self._call(M.QUERY_STATE_NEXT, shim.QueryStateNext(id=qid).SerializeToString()),
                      "query response")

    def _query_close(self, qid: str) -> None:
        self._call(M.QUERY_STATE_CLOSE, shim.QueryStateClose(id=qid).SerializeToString())

    # ---- state ("" collection = public state; the private-data calls require a collection, as in Go)
    def _get(self, collection: str, key: str) -> Optional[bytes]:
        r = self._call(M.GET_STATE, shim.GetState(key=key, collection=collection).SerializeToString())
        return r or None

    def _put(self, collection: str, key: str, value: bytes) -> None:
        if not key:
            raise ShimError("key must not be an empty string")
        self._call(M.PUT_STATE, shim.PutState(key=key, value=value, collection=collection).SerializeToString())

    def _del(self, collection: str, key: str) -> None:
        self._call(M.DEL_STATE, shim.DelState(key=key, collection=collection).SerializeToString())

    def get_state(self, key: str) -> Optional[bytes]:
        return self._get("", key)

    def put_state(self, key: str, value: bytes) -> None:
        self._put("", key, value)

    def del_state(self, key: str) -> None:
        self._del("", key)

    def get_private_data(self, collection: str, key: str) -> Optional[bytes]:
        _need_collection(collection)
        return self._get(collection, key)

    def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        _need_collection(collection)
        self._put(collection, key, value)

    def del_private_data(self, collection: str, key: str) -> None:
        _need_collection(collection)
        self._del(collection, key)

    def get_private_data_hash(self, collection: str, key: str) -> Optional[bytes]:
        _need_collection(collection)
        r = self._call(M.GET_PRIVATE_DATA_HASH, shim.GetState(key=key, collection=collection).SerializeToString())
        return r or None

    def purge_private_data(self, collection: str, key: str) -> None:
        _need_collection(collection)
        self._call(M.PURGE_PRIVATE_DATA, shim.DelState(key=key, collection=collection).SerializeToString())

    # ---- queries
    def _range(self, start: str, end: str, collection: str = "", meta: bytes = b"") -> shim.QueryResponse:
        req = shim.GetStateByRange(startKey=start, endKey=end, collection=collection, metadata=meta)
        return _parse(shim.QueryResponse, self._call(M.GET_STATE_BY_RANGE, req.SerializeToString()), "query response")

    def _rich(self, query: str, collection: str = "", meta: bytes = b"") -> shim.QueryResponse:
        req = shim.GetQueryResult(query=query, collection=collection, metadata=meta)
        return _parse(shim.QueryResponse, self._call(M.GET_QUERY_RESULT, req.SerializeToString()), "query response")

    def _paged(self, resp: shim.QueryResponse) -> tuple[list[tuple[str, bytes]], QueryMetadata]:
        """Read a paginated query to the end (the peer answers one in a single QueryResponse)."""
        it = _QueryIterator(self, resp, _kv)
        rows = list(it)
        md = _parse(shim.QueryResponseMetadata, it._resp.metadata, "query metadata")
        return rows, QueryMetadata(md.fetched_records_count, md.bookmark)

    def get_state_by_range(self, start: str, end: str) -> _QueryIterator:
        start = start or EMPTY_KEY_SUBSTITUTE
        _validate_simple_keys(start, end)
        return _QueryIterator(self, self._range(start, end), _kv)

    def get_private_data_by_range(self, collection: str, start: str, end: str) -> _QueryIterator:
        _need_collection(collection)
        start = start or EMPTY_KEY_SUBSTITUTE
        _validate_simple_keys(start, end)
        return _QueryIterator(self, self._range(start, end, collection), _kv)

    def get_state_by_partial_composite_key(self, object_type: str, attrs: list[str]) -> _QueryIterator:
        k = create_composite_key(object_type, attrs)
        return _QueryIterator(self, self._range(k, k + MAX_RUNE), _kv)

    def get_private_data_by_partial_composite_key(self, collection: str, object_type: str,
                                                  attrs: list[str]) -> _QueryIterator:
        _need_collection(collection)
        k = create_composite_key(object_type, attrs)
        return _QueryIterator(self, self._range(k, k + MAX_RUNE, collection), _kv)

    def get_state_by_range_with_pagination(self, start: str, end: str, page_size: int,
                                           bookmark: str = "") -> tuple[list[tuple[str, bytes]], QueryMetadata]:
        start = start or EMPTY_KEY_SUBSTITUTE
        _validate_simple_keys(start, end)
        meta = shim.QueryMetadata(pageSize=page_size, bookmark=bookmark).SerializeToString()
        return self._paged(self._range(start, end, "", meta))

    def get_state_by_partial_composite_key_with_pagination(self, object_type: str, attrs: list[str], page_size: int,
                                                           bookmark: str = ""):
        k = create_composite_key(object_type, attrs)
        meta = shim.QueryMetadata(pageSize=page_size, bookmark=bookmark).SerializeToString()
        return self._paged(self._range(k, k + MAX_RUNE, "", meta))

    def get_query_result(self, query: str) -> _QueryIterator:
        """Rich query (CouchDB state databases only)."""
        return _QueryIterator(self, self._rich(query), _kv)

    def get_query_result_with_pagination(self, query: str, page_size: int,
                                         bookmark: str = "") -> tuple[list[tuple[str, bytes]], QueryMetadata]:
        meta = shim.QueryMetadata(pageSize=page_size, bookmark=bookmark).SerializeToString()
        return self._paged(self._rich(query, "", meta))

    def get_private_data_query_result(self, collection: str, query: str) -> _QueryIterator:
        _need_collection(collection)
        return _QueryIterator(self, self._rich(query, collection), _kv)

    def get_history_for_key(self, key: str) -> _QueryIterator:
        r = _parse(shim.QueryResponse, self._call(M.GET_HISTORY_FOR_KEY, shim.GetHistoryForKey(key=key).SerializeToString()),
                   "query response")
        return _QueryIterator(self, r, _km)

    create_composite_key = staticmethod(create_composite_key)
    split_composite_key = staticmethod(split_composite_key)

    # ---- state-based endorsement
    def set_state_validation_parameter(self, key: str, ep: bytes) -> None:
        self.set_private_data_validation_parameter("", key, ep)

    def get_state_validation_parameter(self, key: str) -> Optional[bytes]:
        return self.get_private_data_validation_parameter("", key)

    def set_private_data_validation_parameter(self, collection: str, key: str, ep: bytes) -> None:
        md = shim.StateMetadata(metakey=VALIDATION_PARAMETER, value=ep)
        self._call(M.PUT_STATE_METADATA,
                   shim.PutStateMetadata(key=key, collection=collection, metadata=md).SerializeToString())

    def get_private_data_validation_parameter(self, collection: str, key: str) -> Optional[bytes]:
        raw = self._call(M.GET_STATE_METADATA, shim.GetStateMetadata(key=key, collection=collection).SerializeToString())
        r = _parse(shim.StateMetadataResult, raw, "state metadata")
        for e in r.entries:
            if e.metakey == VALIDATION_PARAMETER:
                return e.value
        return None

    # ---- events and chaincode-to-chaincode
    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ShimError("event name can not be empty string")
        self._event = chaincode_event_pb2.ChaincodeEvent(event_name=name, payload=payload)

    def invoke_chaincode(self, name: str, args: list[bytes], channel: str = "") -> Response:
        """Call another chaincode; like Go, never raises: failures come back as a status-500 Response."""
        if channel:
            name = f"{name}/{channel}"
        spec = chaincode_pb2.ChaincodeSpec(chaincode_id=chaincode_pb2.ChaincodeID(name=name),
                                           input=chaincode_pb2.ChaincodeInput(args=args))
        try:
            raw = self._call(M.INVOKE_CHAINCODE, spec.SerializeToString())
            msg = M()
            msg.ParseFromString(raw)
            if msg.type != M.COMPLETED:  # the callee answered ERROR (failed Init, exception, ...)
                return _error_response(msg.payload)
            resp = proposal_response_pb2.Response()
            resp.ParseFromString(msg.payload)
        except (ShimError, DecodeError) as exc:  # PeerError (peer answered ERROR) is a ShimError
            return _error_response(str(exc).encode("utf-8"))
        return Response(resp.status, resp.message, resp.payload)


def _error_response(payload: bytes) -> Response:
    """Go puts the error text in the payload; it also goes in the message here."""
    return Response(ERROR_STATUS, payload.decode("utf-8", "replace"), payload)
