"""Fake-peer tests for the protocol paths test_handler.py does not cover.

History, paginated and partial-composite queries, private data (with the transient map reaching the
stub through a real SignedProposal), INVOKE_CHAINCODE, the query iterator across pages and its
QUERY_STATE_CLOSE, Init failure, KEEPALIVE, proposal checks, graceful stop, and logging hygiene.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2 as shim, proposal_pb2, proposal_response_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from fabshim.compositekey import MAX_RUNE
from fabshim.contract import Chaincode, Contract, transaction
from fabshim.server import ChaincodeServer
from fabshim.stub import Response

from .fakepeer import FakePeer

M = shim.ChaincodeMessage
ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- fake peer, extended
class CovPeer(FakePeer):
    """FakePeer plus history, pagination (peer-like: one response with metadata), private-data hash
    and purge, rich queries, INVOKE_CHAINCODE, KEEPALIVE, and a log of every message received."""

    def __init__(self, target: str, state: dict, **kw) -> None:
        self.history: dict[str, list] = kw.pop("history", {})
        self.msgs: list = []
        self.closed_ids: list[str] = []
        self.purged: list[tuple[str, str]] = []
        self.keepalives = 0
        self.invoked: list = []
        super().__init__(target, state, **kw)

    def _page(self, req: M, qid: str) -> None:
        rows = self.queries[qid]
        now, rest = rows[:self.page], rows[self.page:]
        self.queries[qid] = rest
        res = [shim.QueryResultBytes(resultBytes=r if isinstance(r, bytes) else
                                     kv_query_result_pb2.KV(key=r[0], value=r[1]).SerializeToString())
               for r in now]
        self._reply(req, shim.QueryResponse(results=res, has_more=bool(rest), id=qid).SerializeToString())

    def _new_query(self, rows: list) -> str:
        qid = f"q{len(self.queries)}"
        self.queries[qid] = rows
        return qid

    def _on(self, m: M) -> None:
        with self.lock:
            self.msgs.append(m)
        t = m.type
        if t == M.KEEPALIVE:
            self.keepalives += 1
            return
        if t == M.GET_STATE_BY_RANGE:
            r = shim.GetStateByRange.FromString(m.payload)
            if r.metadata:  # paginated: the real peer answers in one QueryResponse carrying the metadata
                md = shim.QueryMetadata.FromString(r.metadata)
                start = md.bookmark or r.startKey
                rows = sorted((k, v) for (c, k), v in list(self.state.items())
                              if c == r.collection and start <= k and (not r.endKey or k < r.endKey))
                page, rest = rows[:md.pageSize], rows[md.pageSize:]
                res = [shim.QueryResultBytes(resultBytes=kv_query_result_pb2.KV(key=k, value=v).SerializeToString())
                       for k, v in page]
                meta = shim.QueryResponseMetadata(fetched_records_count=len(page),
                                                  bookmark=rest[0][0] if rest else "")
                qid = self._new_query([])
                return self._reply(m, shim.QueryResponse(results=res, has_more=False, id=qid,
                                                         metadata=meta.SerializeToString()).SerializeToString())
        elif t == M.GET_QUERY_RESULT:
            r = shim.GetQueryResult.FromString(m.payload)
            rows = sorted((k, v) for (c, k), v in list(self.state.items()) if c == r.collection)
            return self._page(m, self._new_query(rows))
        elif t == M.GET_HISTORY_FOR_KEY:
            r = shim.GetHistoryForKey.FromString(m.payload)
            rows = [km.SerializeToString() for km in self.history.get(r.key, [])]
            return self._page(m, self._new_query(rows))
        elif t == M.QUERY_STATE_CLOSE:
            qid = shim.QueryStateClose.FromString(m.payload).id
            self.closed_ids.append(qid)
            self.queries.pop(qid, None)
            return self._reply(m, shim.QueryResponse(has_more=False, id=qid).SerializeToString())
        elif t == M.GET_PRIVATE_DATA_HASH:
            r = shim.GetState.FromString(m.payload)
            v = self.state.get((r.collection, r.key))
            return self._reply(m, hashlib.sha256(v).digest() if v is not None else b"")
        elif t == M.PURGE_PRIVATE_DATA:
            r = shim.DelState.FromString(m.payload)
            self.purged.append((r.collection, r.key))
            self.state.pop((r.collection, r.key), None)
            return self._reply(m)
        elif t == M.INVOKE_CHAINCODE:
            spec = chaincode_pb2.ChaincodeSpec.FromString(m.payload)
            self.invoked.append((spec.chaincode_id.name, list(spec.input.args)))
            name = spec.chaincode_id.name.split("/")[0]
            if name == "other":
                inner = M(type=M.COMPLETED, txid=m.txid, channel_id=m.channel_id,
                          payload=proposal_response_pb2.Response(
                              status=200, message="ok", payload=b"hi:" + b",".join(spec.input.args)
                          ).SerializeToString())
                return self._reply(m, inner.SerializeToString())
            if name == "failing":
                inner = M(type=M.ERROR, txid=m.txid, channel_id=m.channel_id, payload=b"callee blew up")
                return self._reply(m, inner.SerializeToString())
            return self._reply(m, b"chaincode definition for 'nope' not found", M.ERROR)
        return super()._on(m)

    def sent(self, mtype: int) -> list:
        with self.lock:
            return [m for m in self.msgs if m.type == mtype]


# ----------------------------------------------------------------------------- chaincode under test
class CovCC:
    def __init__(self) -> None:
        self.init_status = 200
        self.gate = threading.Event()

    def init(self, stub):
        return Response(self.init_status, "init refused" if self.init_status >= 400 else "", b"")

    def invoke(self, stub):
        fn, p = stub.get_function_and_parameters()
        return getattr(self, "tx_" + fn)(stub, *p)

    @staticmethod
    def _json(obj) -> Response:
        return Response(200, "", json.dumps(obj).encode())

    def tx_refuse(self, stub):
        return Response(500, "refused")

    def tx_history(self, stub, key):
        with stub.get_history_for_key(key) as it:
            return self._json([[m.tx_id, m.value.decode(), m.is_delete, m.timestamp.seconds] for m in it])

    def tx_page(self, stub, start, end, size, bookmark):
        rows, md = stub.get_state_by_range_with_pagination(start, end, int(size), bookmark)
        return self._json({"rows": [[k, v.decode()] for k, v in rows], "count": md.fetched_records_count,
                           "bookmark": md.bookmark})

    def tx_cpage(self, stub, otype, size, bookmark):
        rows, md = stub.get_state_by_partial_composite_key_with_pagination(otype, [], int(size), bookmark)
        return self._json({"rows": [stub.split_composite_key(k)[1] for k, _ in rows],
                           "count": md.fetched_records_count, "bookmark": md.bookmark})

    def tx_partial(self, stub, otype, *attrs):
        with stub.get_state_by_partial_composite_key(otype, list(attrs)) as it:
            return self._json([stub.split_composite_key(k)[1] for k, _ in it])

    def tx_range(self, stub, start, end):
        with stub.get_state_by_range(start, end) as it:
            return self._json([k for k, _ in it])

    def tx_first(self, stub, n):
        out = []
        with stub.get_state_by_range("k", "l") as it:
            for k, _ in it:
                out.append(k)
                if len(out) == int(n):
                    break
        return self._json(out)

    def tx_rich(self, stub, query):
        with stub.get_query_result(query) as it:
            return self._json([k for k, _ in it])

    def tx_pvt(self, stub):
        t = stub.get_transient()
        stub.put_private_data("c1", "k", t["secret"])
        got = stub.get_private_data("c1", "k")
        h = stub.get_private_data_hash("c1", "k")
        missing = stub.get_private_data_hash("c1", "absent")
        stub.del_private_data("c1", "old")
        stub.purge_private_data("c1", "gone")
        return self._json({"same": got == t["secret"], "hash": h.hex(), "missing": missing,
                           "keys": sorted(t), "creator": stub.get_creator().hex(),
                           "binding": stub.get_binding().hex(), "ts": stub.get_tx_timestamp().seconds})

    def tx_pvt_fail(self, stub):
        stub.get_transient()
        raise RuntimeError("private step failed")

    def tx_leak(self, stub, value):
        secret = stub.get_transient()["secret"].decode()
        raise RuntimeError(f"cannot store {value} for {secret}")

    def tx_pvt_public(self, stub, op):
        if op == "get":
            stub.get_private_data("", "k")
        elif op == "put":
            stub.put_private_data("", "k", b"v")
        elif op == "hash":
            stub.get_private_data_hash("", "k")
        elif op == "purge":
            stub.purge_private_data("", "k")
        return Response(200)

    def tx_invoke(self, stub, name, channel, *args):
        r = stub.invoke_chaincode(name, [a.encode() for a in args], channel)
        return self._json({"status": r.status, "message": r.message, "payload": r.payload.decode()})

    def tx_wait_then_put(self, stub, key):
        assert self.gate.wait(10)
        time.sleep(0.3)
        stub.put_state(key, b"late")
        return Response(200, "", stub.get_state(key))


def _resp(m: M) -> proposal_response_pb2.Response:
    assert m.type == M.COMPLETED, (M.Type.Name(m.type), m.payload)
    return proposal_response_pb2.Response.FromString(m.payload)


def _json(m: M):
    return json.loads(_resp(m).payload)


@pytest.fixture
def cc():
    return CovCC()


@pytest.fixture
def server(cc):
    s = ChaincodeServer(cc, "127.0.0.1:0", "cov:1")
    s.start()
    yield s
    s.stop(0)


def _peer(server, state=None, **kw) -> CovPeer:
    p = CovPeer(f"127.0.0.1:{server.port}", state if state is not None else {}, **kw)
    deadline = time.time() + 5
    while p.register is None and time.time() < deadline:
        time.sleep(0.01)
    assert p.register is not None
    return p


def _run(p: CovPeer, txid: str, *args: str, **kw) -> M:
    p.send_tx(txid, [a.encode() for a in args], **kw)
    return p.wait([txid])[txid]


# ----------------------------------------------------------------------------- registration, init, keepalive
def test_register_message_and_ready_keepalive(server, cc):
    p = _peer(server)
    reg = p.register
    assert reg.type == M.REGISTER and not reg.txid and not reg.channel_id
    assert chaincode_pb2.ChaincodeID.FromString(reg.payload).name == "cov:1"
    p.out.put(M(type=M.KEEPALIVE))
    deadline = time.time() + 5
    while p.keepalives == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert p.keepalives == 1  # echoed, as the Go shim does
    p.close()


def test_init_failure_is_error_message_but_invoke_failure_is_completed(server, cc):
    p = _peer(server)
    cc.init_status = 500
    m = _run(p, "i", "x", mtype=M.INIT)
    assert (m.type, m.payload, m.channel_id) == (M.ERROR, b"init refused", "ch")
    cc.init_status = 200
    assert _resp(_run(p, "i2", "x", mtype=M.INIT)).status == 200
    # an Invoke returning 500 stays COMPLETED with the Response inside (Go: the endorser handles it)
    r = _resp(_run(p, "t", "refuse"))
    assert (r.status, r.message) == (500, "refused")
    p.close()


# ----------------------------------------------------------------------------- history
def test_history_for_key_across_pages(server):
    hist = {"asset1": [kv_query_result_pb2.KeyModification(tx_id=f"tx{i}", value=f"v{i}".encode(),
                                                           timestamp=Timestamp(seconds=100 + i),
                                                           is_delete=(i == 4)) for i in range(5)]}
    p = _peer(server, history=hist, page=2)
    got = _json(_run(p, "h", "history", "asset1"))
    assert got == [[f"tx{i}", f"v{i}", i == 4, 100 + i] for i in range(5)]
    req = p.sent(M.GET_HISTORY_FOR_KEY)
    assert len(req) == 1 and shim.GetHistoryForKey.FromString(req[0].payload).key == "asset1"
    assert (req[0].txid, req[0].channel_id) == ("h", "ch")
    assert len(p.sent(M.QUERY_STATE_NEXT)) == 2  # 5 rows in pages of 2
    assert p.closed_ids == ["q0"]
    p.close()


# ----------------------------------------------------------------------------- pagination and composite keys
def _composite(otype: str, *attrs: str) -> str:
    return "\x00" + otype + "\x00" + "".join(a + "\x00" for a in attrs)


def test_range_pagination_with_bookmark_and_count(server):
    state = {("", f"k{i}"): f"v{i}".encode() for i in range(5)}
    state[("", _composite("asset", "z"))] = b"composite"  # must never appear in a simple-key range
    p = _peer(server, state=state)
    first = _json(_run(p, "p1", "page", "", "", "2", ""))
    assert first == {"rows": [["k0", "v0"], ["k1", "v1"]], "count": 2, "bookmark": "k2"}
    req = shim.GetStateByRange.FromString(p.sent(M.GET_STATE_BY_RANGE)[0].payload)
    assert (req.startKey, req.endKey) == ("\x01", "")  # Go: "" start key -> "\x01"
    md = shim.QueryMetadata.FromString(req.metadata)
    assert (md.pageSize, md.bookmark) == (2, "")
    second = _json(_run(p, "p2", "page", "", "", "2", first["bookmark"]))
    assert second == {"rows": [["k2", "v2"], ["k3", "v3"]], "count": 2, "bookmark": "k4"}
    last = _json(_run(p, "p3", "page", "", "", "2", second["bookmark"]))
    assert last == {"rows": [["k4", "v4"]], "count": 1, "bookmark": ""}
    assert shim.QueryMetadata.FromString(
        shim.GetStateByRange.FromString(p.sent(M.GET_STATE_BY_RANGE)[1].payload).metadata).bookmark == "k2"
    p.close()


def test_partial_composite_key_pagination_and_plain(server):
    state = {("", _composite("asset", f"a{i}", "x")): b"v" for i in range(5)}
    state[("", _composite("assetX", "a0"))] = b"other type"
    state[("", "asset")] = b"simple"
    p = _peer(server, state=state)
    got = _json(_run(p, "c1", "cpage", "asset", "3", ""))
    assert got == {"rows": [["a0", "x"], ["a1", "x"], ["a2", "x"]], "count": 3,
                   "bookmark": _composite("asset", "a3", "x")}
    req = shim.GetStateByRange.FromString(p.sent(M.GET_STATE_BY_RANGE)[0].payload)
    assert (req.startKey, req.endKey) == ("\x00asset\x00", "\x00asset\x00" + MAX_RUNE)
    got2 = _json(_run(p, "c2", "cpage", "asset", "3", got["bookmark"]))
    assert got2 == {"rows": [["a3", "x"], ["a4", "x"]], "count": 2, "bookmark": ""}
    assert _json(_run(p, "c3", "partial", "asset", "a2")) == [["a2", "x"]]
    assert _json(_run(p, "c4", "partial", "asset")) == [[f"a{i}", "x"] for i in range(5)]
    p.close()


def test_range_key_rules(server):
    state = {("", "a"): b"1", ("", "b"): b"2", ("", _composite("t", "x")): b"c"}
    p = _peer(server, state=state)
    assert _json(_run(p, "r1", "range", "", "")) == ["a", "b"]
    m = _run(p, "r2", "range", "\x00t", "")
    assert m.type == M.ERROR and b"null character" in m.payload
    m = _run(p, "r3", "partial", "t", "bad\x00attr")
    assert m.type == M.ERROR and b"U+0000" in m.payload and b"position [3]" in m.payload
    assert len(p.sent(M.GET_STATE_BY_RANGE)) == 1  # the refused ones never reached the peer
    p.close()


def test_rich_query(server):
    p = _peer(server, state={("", "a"): b"1", ("", "b"): b"2", ("", "c"): b"3"}, page=2)
    assert _json(_run(p, "q", "rich", '{"selector":{}}')) == ["a", "b", "c"]
    req = shim.GetQueryResult.FromString(p.sent(M.GET_QUERY_RESULT)[0].payload)
    assert (req.query, req.collection, req.metadata) == ('{"selector":{}}', "", b"")
    p.close()


# ----------------------------------------------------------------------------- query iterator
def test_iterator_pages_and_close_when_done(server):
    p = _peer(server, state={("", f"k{i}"): b"v" for i in range(7)}, page=2)
    assert _json(_run(p, "all", "range", "k", "l")) == [f"k{i}" for i in range(7)]
    nexts = p.sent(M.QUERY_STATE_NEXT)
    assert [shim.QueryStateNext.FromString(m.payload).id for m in nexts] == ["q0"] * 3
    assert p.closed_ids == ["q0"]  # exactly one close, though the with-block closes again
    p.close()


def test_iterator_closed_early_sends_close(server):
    p = _peer(server, state={("", f"k{i}"): b"v" for i in range(9)}, page=2)
    assert _json(_run(p, "e", "first", "3")) == ["k0", "k1", "k2"]
    assert len(p.sent(M.QUERY_STATE_NEXT)) == 1  # second page fetched, not the rest
    closes = p.sent(M.QUERY_STATE_CLOSE)
    assert len(closes) == 1 and (closes[0].txid, closes[0].channel_id) == ("e", "ch")
    assert p.closed_ids == ["q0"] and "q0" not in p.queries
    p.close()


# ----------------------------------------------------------------------------- private data + proposal
def _signed_proposal(txid: str, channel: str, creator: bytes, nonce: bytes, epoch: int, transient: dict,
                     htype: int = common_pb2.ENDORSER_TRANSACTION, seconds: int = 1_700_000_000):
    ch = common_pb2.ChannelHeader(type=htype, channel_id=channel, tx_id=txid, epoch=epoch,
                                  timestamp=Timestamp(seconds=seconds))
    sh = common_pb2.SignatureHeader(creator=creator, nonce=nonce)
    hdr = common_pb2.Header(channel_header=ch.SerializeToString(), signature_header=sh.SerializeToString())
    cpp = proposal_pb2.ChaincodeProposalPayload(input=b"ignored", TransientMap=transient)
    prop = proposal_pb2.Proposal(header=hdr.SerializeToString(), payload=cpp.SerializeToString())
    return proposal_pb2.SignedProposal(proposal_bytes=prop.SerializeToString(), signature=b"sig")


CREATOR = identities_pb2.SerializedIdentity(mspid="Org1MSP", id_bytes=b"-----PEM-----").SerializeToString()
SECRET = b"TRANSIENT-SECRET-7f3a9c"


def _send_with_proposal(p: CovPeer, txid: str, args: list, transient: dict, **kw) -> None:
    sp = _signed_proposal(txid, "ch", CREATOR, b"nonce-123", kw.pop("epoch", 7), transient, **kw)
    msg = M(type=M.TRANSACTION, txid=txid, channel_id="ch",
            payload=chaincode_pb2.ChaincodeInput(args=args).SerializeToString())
    msg.proposal.CopyFrom(sp)
    p.out.put(msg)


def test_private_data_via_peer_messages_and_transient(server):
    p = _peer(server, state={("c1", "old"): b"x", ("c1", "gone"): b"y"})
    _send_with_proposal(p, "pv", [b"pvt"], {"secret": SECRET, "other": b"2"})
    got = _json(p.wait(["pv"])["pv"])
    assert got["same"] is True and got["keys"] == ["other", "secret"]
    assert got["hash"] == hashlib.sha256(SECRET).hexdigest() and got["missing"] is None
    assert bytes.fromhex(got["creator"]) == CREATOR and got["ts"] == 1_700_000_000
    expect = hashlib.sha256(b"nonce-123" + CREATOR + (7).to_bytes(8, "little")).hexdigest()
    assert got["binding"] == expect  # Go: SHA256(nonce || creator || LE uint64 epoch)
    put = shim.PutState.FromString(p.sent(M.PUT_STATE)[0].payload)
    assert (put.collection, put.key, put.value) == ("c1", "k", SECRET)
    assert [(g.collection, g.key) for g in map(shim.GetState.FromString,
                                               (m.payload for m in p.sent(M.GET_PRIVATE_DATA_HASH)))] == \
        [("c1", "k"), ("c1", "absent")]
    assert shim.DelState.FromString(p.sent(M.DEL_STATE)[0].payload).collection == "c1"
    assert p.purged == [("c1", "gone")] and ("c1", "old") not in p.state
    p.close()


def test_private_data_requires_collection(server):
    p = _peer(server)
    for i, op in enumerate(["get", "put", "hash", "purge"]):
        m = _run(p, f"x{i}", "pvt_public", op)
        assert m.type == M.ERROR and b"collection must not be an empty string" in m.payload, op
    assert not p.sent(M.GET_STATE) and not p.sent(M.PUT_STATE) and not p.sent(M.PURGE_PRIVATE_DATA)
    p.close()


def test_proposal_header_type_checked(server):
    p = _peer(server)
    _send_with_proposal(p, "bad", [b"pvt"], {"secret": SECRET}, htype=common_pb2.MESSAGE)
    m = p.wait(["bad"])["bad"]
    assert m.type == M.ERROR and b"invalid channel header type" in m.payload
    p.close()


# ----------------------------------------------------------------------------- invoke_chaincode
def test_invoke_chaincode_success_and_errors(server):
    p = _peer(server)
    got = _json(_run(p, "ok", "invoke", "other", "ch2", "a", "b"))
    assert got == {"status": 200, "message": "ok", "payload": "hi:a,b"}
    msg = p.sent(M.INVOKE_CHAINCODE)[0]
    spec = chaincode_pb2.ChaincodeSpec.FromString(msg.payload)
    assert spec.chaincode_id.name == "other/ch2" and list(spec.input.args) == [b"a", b"b"]
    assert (msg.txid, msg.channel_id) == ("ok", "ch")
    _json(_run(p, "same", "invoke", "other", "", "c"))
    assert p.invoked[-1] == ("other", [b"c"])  # no channel: the caller's, name unchanged
    callee = _json(_run(p, "cf", "invoke", "failing", "", "x"))
    assert callee == {"status": 500, "message": "callee blew up", "payload": "callee blew up"}
    peer_err = _json(_run(p, "pe", "invoke", "nope", "", "x"))
    assert peer_err["status"] == 500 and "not found" in peer_err["message"] and "not found" in peer_err["payload"]
    p.close()


# ----------------------------------------------------------------------------- graceful stop
def test_stop_is_prompt_with_idle_stream(cc):
    s = ChaincodeServer(cc, "127.0.0.1:0", "cov:1")
    s.start()
    p = _peer(s)
    assert _resp(_run(p, "warm", "range", "", "")).status == 200
    t0 = time.monotonic()
    s.stop(10.0)
    elapsed = time.monotonic() - t0
    p.reader.join(5)
    assert elapsed < 2.0, elapsed
    assert not p.reader.is_alive()  # the peer saw its stream end
    p.close()


def test_stop_lets_running_transaction_finish(cc):
    s = ChaincodeServer(cc, "127.0.0.1:0", "cov:1")
    s.start()
    p = _peer(s)
    p.send_tx("run", [b"wait_then_put", b"k"])
    deadline = time.time() + 5
    while not any(h.busy() for h in s._streams.streams()) and time.time() < deadline:
        time.sleep(0.01)
    threading.Timer(0.2, cc.gate.set).start()
    t0 = time.monotonic()
    s.stop(10.0)
    elapsed = time.monotonic() - t0
    m = p.wait(["run"], timeout=1)["run"]
    assert _resp(m).payload == b"late"  # it still talked to the peer while draining
    assert 0.4 < elapsed < 3.0, elapsed
    p.close()


# ----------------------------------------------------------------------------- logging hygiene
def test_import_adds_no_root_handlers():
    code = (
        "import logging\n"
        "root = logging.getLogger(); before = (list(root.handlers), root.level)\n"
        "import fabshim, fabshim.errors, fabshim.compositekey, fabshim.identity, fabshim.stub\n"
        "import fabshim.handler, fabshim.server, fabshim.contract, fabshim.memstub\n"
        "assert (list(root.handlers), root.level) == before, root.handlers\n"
        "for n, l in logging.Logger.manager.loggerDict.items():\n"
        "    if n.startswith('fabshim') and isinstance(l, logging.Logger):\n"
        "        assert not l.handlers and l.propagate and l.level == logging.NOTSET, n\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "chaincode"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_no_transient_or_payload_bytes_in_debug_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    p = _peer(server, state={("c1", "gone"): b"y"})
    _send_with_proposal(p, "lg", [b"pvt"], {"secret": SECRET})
    assert _json(p.wait(["lg"])["lg"])["same"] is True
    _send_with_proposal(p, "lf", [b"pvt_fail"], {"secret": SECRET})  # exception path logs a traceback
    assert p.wait(["lf"])["lf"].type == M.ERROR
    p.close()
    assert any("lf" in r.getMessage() for r in caplog.records)  # the capture did see the shim's logs
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for needle in (SECRET.decode(), SECRET.hex(), hashlib.sha256(SECRET).hexdigest(), "nonce-123", "-----PEM-----"):
        assert needle not in text, needle


ARG_SECRET = "ARGUMENT-SECRET-51c0de"


class LeakyContract(Contract):
    """A contract whose unexpected exception text embeds its argument and a transient value."""
    name = "leaky"

    @transaction
    def store(self, ctx, value: str) -> str:
        secret = ctx.stub.get_transient()["secret"].decode()
        raise ValueError(f"cannot store {value} for {secret}")


def _record_text(r: logging.LogRecord) -> str:
    """Everything a handler could print for a record: message, args, exception and stack text."""
    parts = [r.getMessage(), repr(r.args), r.exc_text or "", r.stack_info or ""]
    if r.exc_info:
        parts.append(logging.Formatter().formatException(r.exc_info))
    return "\n".join(parts)


def _assert_clean_at_info_and_above(records: list, needles: tuple) -> list:
    loud = [r for r in records if r.levelno >= logging.INFO]
    for r in loud:
        assert r.exc_info is None, (r.levelname, r.getMessage())  # tracebacks only at DEBUG
        text = _record_text(r)
        for needle in needles:
            assert needle not in text, (r.levelname, r.name, needle)
    return loud


@pytest.mark.parametrize("path", ["handler", "contract"])
def test_exception_text_with_argument_and_transient_never_logged_above_debug(path, cc, caplog):
    caplog.set_level(logging.DEBUG)
    if path == "handler":  # the shim answers ERROR
        srv, fn, expect = ChaincodeServer(cc, "127.0.0.1:0", "cov:1"), b"leak", "RuntimeError"
    else:                  # the contract router answers a status-500 Response
        srv, fn, expect = ChaincodeServer(Chaincode([LeakyContract()]), "127.0.0.1:0", "leaky:1"), b"store", \
            "ValueError"
    srv.start()
    txid = "f00dfeed" + "ab" * 28
    try:
        p = _peer(srv)
        _send_with_proposal(p, txid, [fn, ARG_SECRET.encode()], {"secret": SECRET})
        m = p.wait([txid])[txid]
        reply = m.payload if m.type == M.ERROR else _resp(m).message.encode()
        assert ARG_SECRET.encode() in reply and SECRET in reply  # the caller still gets the message
        p.close()
    finally:
        srv.stop(0)
    needles = (ARG_SECRET, SECRET.decode(), SECRET.hex())
    loud = _assert_clean_at_info_and_above(caplog.records, needles)
    errors = [r for r in loud if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    msg = errors[0].getMessage()
    assert expect in msg and fn.decode() in msg and txid[:8] in msg and txid not in msg
    # the traceback is still there for whoever turns DEBUG on (the shim's own with the message clipped)
    assert any(r.levelno == logging.DEBUG and ((r.exc_info and r.exc_info[0].__name__ == expect) or
                                               ("Traceback (most recent call last)" in r.getMessage()
                                                and f"{expect}: " in r.getMessage()))
               for r in caplog.records)
