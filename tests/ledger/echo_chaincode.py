"""A tiny chaincode-as-a-service used only by the ledger client's live tests.

Functions: ``put k v`` (writes, emits event ``Put`` with payload ``k``), ``get k``, ``incr k``
(read-modify-write, for MVCC conflicts), ``transient`` (returns the sorted transient keys),
anything else fails with status 500 "round 3 is not open". Run as ``python -m
tests.ledger.echo_chaincode`` with the CHAINCODE_* variables the network's deploy sets.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent import futures
from typing import Iterator

import grpc
from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_pb2, proposal_response_pb2
from fabric_protos.peer import chaincode_shim_pb2 as shim
from fabric_protos.peer import chaincode_shim_pb2_grpc as shim_grpc

log = logging.getLogger(__name__)
Msg = shim.ChaincodeMessage


class EchoChaincode(shim_grpc.ChaincodeServicer):
    """Speaks the shim protocol on the stream the peer opens (CCaaS)."""

    def Connect(self, request_iterator: Iterator[Msg], context: grpc.ServicerContext) -> Iterator[Msg]:
        out: queue.Queue[Msg | None] = queue.Queue()
        waiting: dict[tuple[str, str], queue.Queue[Msg]] = {}

        def call(msg: Msg) -> Msg:
            q: queue.Queue[Msg] = queue.Queue()
            waiting[(msg.channel_id, msg.txid)] = q
            out.put(msg)
            try:
                return q.get(timeout=30)
            finally:
                waiting.pop((msg.channel_id, msg.txid), None)

        def state(msg: Msg, kind: int, payload: bytes) -> Msg:
            return call(Msg(type=kind, txid=msg.txid, channel_id=msg.channel_id, payload=payload))

        def handle(msg: Msg) -> None:
            args = list(chaincode_pb2.ChaincodeInput.FromString(msg.payload).args)
            fn = args[0].decode() if args else ""
            event = None
            if fn == "put":
                state(msg, Msg.PUT_STATE, shim.PutState(key=args[1].decode(), value=args[2]).SerializeToString())
                resp = proposal_response_pb2.Response(status=200, payload=args[2])
                event = chaincode_event_pb2.ChaincodeEvent(event_name="Put", payload=args[1])
            elif fn == "get":
                got = state(msg, Msg.GET_STATE, shim.GetState(key=args[1].decode()).SerializeToString())
                resp = proposal_response_pb2.Response(status=200, payload=got.payload)
            elif fn == "incr":
                got = state(msg, Msg.GET_STATE, shim.GetState(key=args[1].decode()).SerializeToString())
                value = str(int(got.payload or b"0") + 1).encode()
                state(msg, Msg.PUT_STATE, shim.PutState(key=args[1].decode(), value=value).SerializeToString())
                resp = proposal_response_pb2.Response(status=200, payload=value)
            elif fn == "transient":
                cpp = proposal_pb2.ChaincodeProposalPayload.FromString(
                    proposal_pb2.Proposal.FromString(msg.proposal.proposal_bytes).payload)
                resp = proposal_response_pb2.Response(status=200, payload=",".join(sorted(cpp.TransientMap)).encode())
            else:
                resp = proposal_response_pb2.Response(status=500, message="round 3 is not open")
            out.put(Msg(type=Msg.COMPLETED, txid=msg.txid, channel_id=msg.channel_id,
                        payload=resp.SerializeToString(), chaincode_event=event))

        def reader() -> None:
            try:
                for msg in request_iterator:
                    if msg.type in (Msg.TRANSACTION, Msg.INIT):
                        threading.Thread(target=handle, args=(msg,), daemon=True).start()
                    elif msg.type in (Msg.RESPONSE, Msg.ERROR) and (msg.channel_id, msg.txid) in waiting:
                        waiting[(msg.channel_id, msg.txid)].put(msg)
            except grpc.RpcError:
                pass
            out.put(None)

        out.put(Msg(type=Msg.REGISTER,
                    payload=chaincode_pb2.ChaincodeID(name=os.environ["CHAINCODE_ID"]).SerializeToString()))
        threading.Thread(target=reader, daemon=True).start()
        while (item := out.get()) is not None:
            yield item


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    read = lambda var: open(os.environ[var], "rb").read()  # noqa: E731
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    shim_grpc.add_ChaincodeServicer_to_server(EchoChaincode(), server)
    creds = grpc.ssl_server_credentials([(read("CHAINCODE_TLS_KEY"), read("CHAINCODE_TLS_CERT"))],
                                        root_certificates=read("CHAINCODE_TLS_CLIENT_CACERT"),
                                        require_client_auth=True)
    server.add_secure_port(os.environ["CHAINCODE_SERVER_ADDRESS"], creds)
    server.start()
    log.info("echo chaincode listening on %s", os.environ["CHAINCODE_SERVER_ADDRESS"])
    server.wait_for_termination()


if __name__ == "__main__":
    main()
