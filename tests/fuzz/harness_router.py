"""Fuzz target: the contract router's argument parsing (``fabshim.contract.Chaincode.invoke``).

The frames of the input (see :mod:`tests.fuzz.frames`) are the transaction's arguments, the first
one the function name, handed to a router of two contracts whose transactions take every parameter
type the router converts (str, int, float, bool, bytes, JSON, unannotated), run on a MemoryStub.

Findings: any exception out of ``invoke``; a reply that is not a Response with an integer status
and a text message; an error message longer than the router's echo bound allows.
"""
from __future__ import annotations

from typing import Any

from fabshim.contract import Chaincode, ChaincodeError, Context, Contract, transaction
from fabshim.memstub import MemoryStub, serialized_identity
from fabshim.stub import Response

from . import frames

MAX_MESSAGE = 600  # the router's texts around at most 200 echoed characters of each input
CREATOR = serialized_identity("Org1MSP", b"not a certificate")


class Finding(AssertionError):
    """An input broke one of the harness's properties."""


class Typed(Contract):
    """The default contract: one transaction per parameter type."""

    name = "typed"

    @transaction
    def text(self, ctx: Context, key: str, value: str) -> str:
        ctx.stub.put_state(key, value.encode())
        return value

    @transaction(evaluate=True)
    def number(self, ctx: Context, n: int, x: float) -> list:
        return [n % 1000, x]

    @transaction
    def flag(self, ctx: Context, on: bool) -> bool:
        return not on

    @transaction
    def raw(self, ctx: Context, data: bytes) -> bytes:
        return data[::-1]

    @transaction
    def doc(self, ctx: Context, obj: dict, items: list) -> dict:
        if not isinstance(obj, dict):
            raise ChaincodeError("obj must be a JSON object", 400)
        return {"keys": len(obj), "items": len(items) if isinstance(items, list) else -1}

    @transaction
    def loose(self, ctx: Context, anything) -> str:
        return anything

    @transaction
    def fails(self, ctx: Context, message: str) -> None:
        raise ChaincodeError(message, 409)

    @transaction
    def breaks(self, ctx: Context, key: str) -> Any:
        return {"no such key": ctx.stub.get_state(key)[0]}  # TypeError on a missing key


class Other(Contract):
    """A second namespace (``other:fn``)."""

    name = "other"

    @transaction(evaluate=True)
    def ping(self, ctx: Context) -> str:
        return "pong"

    @transaction
    def pair(self, ctx: Context, a: int, b: "int") -> int:
        return a - b


ROUTER = Chaincode([Typed(), Other()])


def one_input(data: bytes) -> None:
    """The fuzz target."""
    args = list(frames.split(data))
    stub = MemoryStub()
    with stub.transaction(CREATOR, args):
        resp = ROUTER.invoke(stub)
    if not isinstance(resp, Response) or not isinstance(resp.status, int) or not isinstance(resp.message, str):
        raise Finding(f"invoke returned {resp!r:.200}")
    if not isinstance(resp.payload, (bytes, bytearray)):
        raise Finding(f"payload of type {type(resp.payload).__name__}")
    if resp.status != 200 and len(resp.message) > MAX_MESSAGE and not args[0].startswith(b"fails"):
        raise Finding(f"status {resp.status} message of {len(resp.message)} characters")


def seeds() -> list[bytes]:
    """One call of each transaction with well-formed arguments, and a few malformed ones."""
    calls = [
        [b"text", b"k", b"v"], [b"typed:text", b"k", b"v"], [b"number", b"12", b"1.5"],
        [b"number", b"1e400", b"nan"], [b"flag", b"true"], [b"raw", b"\xff\x00"],
        [b"doc", b'{"a": [1, 2]}', b"[1, 2, 3]"], [b"doc", b"[" * 50, b"{}"], [b"loose", b"x"],
        [b"fails", b"no"], [b"breaks", b"missing"], [b"other:ping"], [b"other:pair", b"5", b"3"],
        [b"org.hyperledger.fabric:GetMetadata"], [b"nope"], [], [b"\xff"], [b"text", b"\xff\xfe", b"v"],
    ]
    return [frames.join(c) for c in calls]
