"""Contract API: @transaction methods routed by function name, typed arguments."""
from __future__ import annotations

import inspect
import json
import logging
import typing
from typing import Any, Callable, Optional

from .identity import ClientIdentity
from .stub import Response

log = logging.getLogger(__name__)
METADATA_FN = "org.hyperledger.fabric:GetMetadata"


class ChaincodeError(Exception):
    """Raise from a transaction to answer with this message (and status)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class Context:
    """What a transaction sees: the stub and (lazily) the client identity."""

    def __init__(self, stub: Any) -> None:
        self.stub = stub
        self._cid: Optional[ClientIdentity] = None

    @property
    def tx_id(self) -> str:
        return self.stub.tx_id

    @property
    def client_identity(self) -> ClientIdentity:
        if self._cid is None:
            self._cid = ClientIdentity(self.stub.get_creator())
        return self._cid


def transaction(fn: Optional[Callable] = None, *, evaluate: bool = False):
    """Mark a Contract method as a transaction (``evaluate=True`` for queries)."""
    def mark(f: Callable) -> Callable:
        f.__fabshim_tx__ = {"evaluate": evaluate}
        return f
    return mark(fn) if fn is not None else mark


class Contract:
    """Base class; ``name`` is the namespace used as ``name:fn``."""
    name: str = ""


def _convert(raw: str, ann: Any) -> Any:
    if ann is inspect.Parameter.empty or ann is str or ann == "str":
        return raw
    if ann is bool or ann == "bool":
        if raw in ("true", "false"):
            return raw == "true"
        raise ValueError("expected true or false")
    if ann is int or ann == "int":
        return int(raw)
    if ann is float or ann == "float":
        return float(raw)
    if ann is bytes or ann == "bytes":
        return raw.encode("utf-8")
    return json.loads(raw)


def _encode(v: Any) -> bytes:
    if v is None:
        return b""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8")
    return json.dumps(v, sort_keys=True, separators=(",", ":")).encode("utf-8")


class _Tx:
    def __init__(self, contract: Contract, name: str, fn: Callable, evaluate: bool) -> None:
        self.contract, self.name, self.fn, self.evaluate = contract, name, fn, evaluate
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        params = list(inspect.signature(fn).parameters.values())[1:]  # drop ctx
        self.params = [(p.name, hints.get(p.name, p.annotation)) for p in params]

    def type_name(self, ann: Any) -> str:
        return getattr(ann, "__name__", None) or ("any" if ann is inspect.Parameter.empty else str(ann))


class Chaincode:
    """Routes ``fn`` / ``contract:fn`` to @transaction methods; first contract is the default."""

    def __init__(self, contracts: list[Contract]) -> None:
        if not contracts:
            raise ValueError("at least one contract is required")
        self.contracts = contracts
        self._default = contracts[0].name
        self._txs: dict[tuple[str, str], _Tx] = {}
        for c in contracts:
            for attr, m in inspect.getmembers(type(c), predicate=inspect.isfunction):
                meta = getattr(m, "__fabshim_tx__", None)
                if meta is not None:
                    self._txs[(c.name, attr)] = _Tx(c, attr, getattr(c, attr), meta["evaluate"])

    def init(self, stub: Any) -> Response:
        fn, _ = stub.get_function_and_parameters()
        if not fn:
            return Response(200)
        return self.invoke(stub)

    def invoke(self, stub: Any) -> Response:
        try:
            args = stub.get_string_args()
        except UnicodeDecodeError:
            return Response(500, "arguments must be valid UTF-8")
        if not args:
            return Response(500, "no function name given")
        fname, params = args[0], args[1:]
        if fname == METADATA_FN:
            return Response(200, "", _encode(self.metadata()))
        cname, sep, f = fname.rpartition(":")
        if not sep:
            cname = self._default
        tx = self._txs.get((cname, f))
        if tx is None:
            return Response(500, f"function '{fname}' not found")
        if len(params) != len(tx.params):
            return Response(500, f"{fname}: expected {len(tx.params)} arguments, got {len(params)}")
        conv = []
        for (pname, ann), raw in zip(tx.params, params):
            try:
                conv.append(_convert(raw, ann))
            except (ValueError, json.JSONDecodeError) as exc:
                return Response(500, f"{fname}: cannot parse argument '{pname}' as {tx.type_name(ann)}: {exc}")
        try:
            return Response(200, "", _encode(tx.fn(Context(stub), *conv)))
        except ChaincodeError as exc:
            return Response(exc.status, exc.message)
        except Exception as exc:
            log.error("internal error in %s (tx %s)", fname, getattr(stub, "tx_id", ""), exc_info=True)
            return Response(500, f"internal error in {fname}: {type(exc).__name__}: {exc}")

    def metadata(self) -> dict:
        out: dict[str, Any] = {"contracts": {}, "default": self._default}
        for c in self.contracts:
            txs = [{"name": t.name, "evaluate": t.evaluate,
                    "parameters": [{"name": n, "type": t.type_name(a)} for n, a in t.params]}
                   for (cn, _), t in sorted(self._txs.items()) if cn == c.name]
            out["contracts"][c.name] = {"name": c.name, "transactions": txs}
        return out
