"""A fake peer: dials the chaincode server's Connect and plays the peer side."""
from __future__ import annotations

import queue
import threading
from typing import Optional

import grpc
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2 as shim, chaincode_shim_pb2_grpc

M = shim.ChaincodeMessage
OPTS = [("grpc.max_send_message_length", 100 << 20), ("grpc.max_receive_message_length", 100 << 20)]


class FakePeer:
    def __init__(self, target: str, state: dict, creds: Optional[grpc.ChannelCredentials] = None,
                 options: Optional[list] = None, page: int = 2, fail_keys: tuple = (),
                 auto_ready: bool = True) -> None:
        opts = OPTS + (options or [])
        self.channel = grpc.secure_channel(target, creds, opts) if creds else grpc.insecure_channel(target, opts)
        self.state, self.page, self.fail_keys, self.auto_ready = state, page, fail_keys, auto_ready
        self.out: "queue.Queue" = queue.Queue()
        self.done: dict[str, M] = {}
        self.cv = threading.Condition()
        self.register: Optional[M] = None
        self.queries: dict[str, list] = {}
        self.requests: list[int] = []
        self.lock = threading.Lock()
        stub = chaincode_shim_pb2_grpc.ChaincodeStub(self.channel)
        self.call = stub.Connect(self._gen())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _gen(self):
        while True:
            m = self.out.get()
            if m is None:
                return
            yield m

    def _read(self) -> None:
        try:
            for m in self.call:
                self._on(m)
        except grpc.RpcError as e:
            self.error = e
        with self.cv:
            self.cv.notify_all()

    def _reply(self, req: M, payload: bytes = b"", t=M.RESPONSE) -> None:
        self.out.put(M(type=t, payload=payload, txid=req.txid, channel_id=req.channel_id))

    def _page(self, req: M, qid: str) -> None:
        rows = self.queries[qid]
        now, rest = rows[:self.page], rows[self.page:]
        self.queries[qid] = rest
        res = [shim.QueryResultBytes(resultBytes=kv_query_result_pb2.KV(key=k, value=v).SerializeToString())
               for k, v in now]
        self._reply(req, shim.QueryResponse(results=res, has_more=bool(rest), id=qid).SerializeToString())

    def _on(self, m: M) -> None:
        with self.lock:
            self.requests.append(m.type)
        if m.type == M.REGISTER:
            self.register = m
            if self.auto_ready:
                self.out.put(M(type=M.REGISTERED))
                self.out.put(M(type=M.READY))
        elif m.type in (M.COMPLETED, M.ERROR):
            with self.cv:
                self.done[m.txid] = m
                self.cv.notify_all()
        elif m.type == M.GET_STATE:
            r = shim.GetState.FromString(m.payload)
            if r.key in self.fail_keys:
                return self._reply(m, b"boom from peer", M.ERROR)
            self._reply(m, self.state.get((r.collection, r.key), b""))
        elif m.type == M.PUT_STATE:
            r = shim.PutState.FromString(m.payload)
            with self.lock:
                self.state[(r.collection, r.key)] = r.value
            self._reply(m)
        elif m.type == M.DEL_STATE:
            r = shim.DelState.FromString(m.payload)
            self.state.pop((r.collection, r.key), None)
            self._reply(m)
        elif m.type == M.GET_STATE_BY_RANGE:
            r = shim.GetStateByRange.FromString(m.payload)
            rows = sorted((k, v) for (c, k), v in list(self.state.items())
                          if c == r.collection and r.startKey <= k and (not r.endKey or k < r.endKey))
            qid = f"q{len(self.queries)}"
            self.queries[qid] = rows
            self._page(m, qid)
        elif m.type == M.QUERY_STATE_NEXT:
            self._page(m, shim.QueryStateNext.FromString(m.payload).id)
        elif m.type == M.QUERY_STATE_CLOSE:
            self._reply(m)
        elif m.type == M.PUT_STATE_METADATA:
            r = shim.PutStateMetadata.FromString(m.payload)
            self.state[("meta", r.key)] = r.metadata.value
            self._reply(m)
        elif m.type == M.GET_STATE_METADATA:
            r = shim.GetStateMetadata.FromString(m.payload)
            v = self.state.get(("meta", r.key))
            ents = [shim.StateMetadata(metakey="VALIDATION_PARAMETER", value=v)] if v else []
            self._reply(m, shim.StateMetadataResult(entries=ents).SerializeToString())
        else:
            self._reply(m, b"unsupported", M.ERROR)

    def send_tx(self, txid: str, args: list[bytes], channel: str = "ch", mtype=M.TRANSACTION) -> None:
        inp = chaincode_pb2.ChaincodeInput(args=args)
        self.out.put(M(type=mtype, payload=inp.SerializeToString(), txid=txid, channel_id=channel))

    def ended(self, timeout: float = 5.0) -> bool:
        """True once the chaincode side has ended the stream."""
        self.reader.join(timeout)
        return not self.reader.is_alive()

    def wait(self, txids, timeout: float = 20.0) -> dict:
        with self.cv:
            ok = self.cv.wait_for(lambda: all(t in self.done for t in txids), timeout)
        assert ok, f"missing replies: {[t for t in txids if t not in self.done][:5]}"
        return {t: self.done[t] for t in txids}

    def close(self) -> None:
        self.out.put(None)
        self.channel.close()


STUB_REQUESTS = frozenset({M.GET_STATE, M.PUT_STATE, M.DEL_STATE, M.GET_STATE_BY_RANGE, M.QUERY_STATE_NEXT,
                           M.QUERY_STATE_CLOSE, M.GET_STATE_METADATA, M.PUT_STATE_METADATA,
                           M.GET_PRIVATE_DATA_HASH, M.GET_HISTORY_FOR_KEY, M.GET_QUERY_RESULT,
                           M.INVOKE_CHAINCODE, M.PURGE_PRIVATE_DATA})


class HostilePeer(FakePeer):
    """Completes the handshake, then never answers a stub request (it only counts them)."""

    def __init__(self, target: str, **kw) -> None:
        self.unanswered: list[M] = []
        super().__init__(target, {}, **kw)

    def _on(self, m: M) -> None:
        if m.type in STUB_REQUESTS:
            with self.lock:
                self.requests.append(m.type)
                self.unanswered.append(m)
            return
        super()._on(m)


class IdleStreams:
    """``n`` Connect streams on one channel that take their REGISTER and never say anything."""

    def __init__(self, target: str, n: int, creds: Optional[grpc.ChannelCredentials] = None) -> None:
        self.channel = grpc.secure_channel(target, creds, OPTS) if creds else grpc.insecure_channel(target, OPTS)
        self._stop = threading.Event()
        stub = chaincode_shim_pb2_grpc.ChaincodeStub(self.channel)
        self.calls = [stub.Connect(self._silent()) for _ in range(n)]

    def _silent(self):
        self._stop.wait()
        return
        yield  # a generator that sends nothing until closed

    def close(self) -> None:
        self._stop.set()
        for c in self.calls:
            c.cancel()
        self.channel.close()
