"""Tiny demo contract for deploying the shim to a live network.

Run: CHAINCODE_ID=... CHAINCODE_SERVER_ADDRESS=0.0.0.0:9999 python tests/chaincode_demo/demo_cc.py
(or ``python -m tests.chaincode_demo.demo_cc`` from the repository root, as the live tests deploy it).

Used by tests/shim/test_demo.py (fake peer), tests/ledger/test_live_runtime.py (live network) and
benchmarks/gateway_throughput.py.
"""
from __future__ import annotations

import base64
import binascii
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "chaincode"))

from fabshim.contract import Chaincode, ChaincodeError, Context, Contract, transaction  # noqa: E402
from fabshim.server import run_from_env  # noqa: E402


def _decode_policy(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise ChaincodeError("policy must be hex or base64 SignaturePolicyEnvelope bytes", 400) from None


class Demo(Contract):
    name = "demo"

    @transaction
    def put(self, ctx: Context, key: str, value: str) -> None:
        ctx.stub.put_state(key, value.encode())

    @transaction(evaluate=True)
    def get(self, ctx: Context, key: str) -> bytes:
        v = ctx.stub.get_state(key)
        if v is None:
            raise ChaincodeError(f"key {key} not found", 404)
        return v

    @transaction
    def add(self, ctx: Context, key: str, delta: int) -> int:
        """Read-modify-write counter; returns the new value (JSON number)."""
        raw = ctx.stub.get_state(key)
        value = (int(raw) if raw else 0) + delta
        ctx.stub.put_state(key, str(value).encode())
        return value

    @transaction
    def delete(self, ctx: Context, key: str) -> None:
        ctx.stub.del_state(key)

    @transaction
    def fail(self, ctx: Context, message: str) -> None:
        raise ChaincodeError(message)

    @transaction
    def emit(self, ctx: Context, name: str, payload: str) -> None:
        ctx.stub.set_event(name, payload.encode())

    @transaction
    def put_emit(self, ctx: Context, key: str, value: str) -> None:
        """Write ``key`` and emit event ``Put`` whose payload is ``key``."""
        ctx.stub.put_state(key, value.encode())
        ctx.stub.set_event("Put", key.encode())

    @transaction
    def put_private(self, ctx: Context, collection: str, key: str) -> None:
        t = ctx.stub.get_transient()
        if "value" not in t:
            raise ChaincodeError("transient field 'value' is required", 400)
        ctx.stub.put_private_data(collection, key, t["value"])

    @transaction(evaluate=True)
    def get_private(self, ctx: Context, collection: str, key: str) -> bytes:
        v = ctx.stub.get_private_data(collection, key)
        if v is None:
            raise ChaincodeError(f"private key {key} not found", 404)
        return v

    @transaction
    def set_key_policy(self, ctx: Context, key: str, policy: str) -> None:
        ctx.stub.set_state_validation_parameter(key, _decode_policy(policy))

    @transaction(evaluate=True)
    def get_key_policy(self, ctx: Context, key: str) -> str:
        return (ctx.stub.get_state_validation_parameter(key) or b"").hex()

    @transaction(evaluate=True)
    def whoami(self, ctx: Context) -> dict:
        ci = ctx.client_identity
        return {"msp_id": ci.msp_id, "id": ci.id, "role": ci.get_attribute("fedfabric.role")}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    run_from_env(Chaincode([Demo()]))
