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
    """Base class; ``name`` is the namespace used as ``name:fn``.

    ``error_types`` are exceptions a transaction may raise to answer with their message and their
    ``status`` attribute (default 400), like :class:`ChaincodeError`; ``before_transaction`` runs
    before every transaction and refuses it by raising one of them.
    """
    name: str = ""
    error_types: tuple[type[Exception], ...] = ()

    def before_transaction(self, ctx: "Context", name: str, evaluate: bool) -> None:
        """Hook run before every transaction of this contract (nothing by default)."""


ECHO_LIMIT = 200


def _bounded(text: str) -> str:
    """``repr`` of a client-supplied name, cut to ``ECHO_LIMIT`` characters."""
    r = repr(text)
    return r if len(r) <= ECHO_LIMIT else f"{r[:ECHO_LIMIT]}… ({len(text)} characters)"


def _is_bytes(ann: Any) -> bool:
    return ann is bytes or ann == "bytes"


def _text(raw: bytes, fname: str, pname: str) -> str:
    """A non-``bytes`` parameter as text; refuses invalid UTF-8 with a clear message."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{fname}: argument '{pname}' is not valid UTF-8 "
                         "(declare the parameter as bytes to receive raw bytes)") from None


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


def _convert_params(tx: _Tx, fname: str, params: list[bytes]) -> "list[Any] | Response":
    """Typed parameter values, or the error Response naming the parameter that failed."""
    conv: list[Any] = []
    for (pname, ann), raw in zip(tx.params, params):
        if _is_bytes(ann):
            conv.append(bytes(raw))
            continue
        try:
            text = _text(raw, fname, pname)
        except ValueError as exc:
            return Response(500, str(exc))
        try:
            conv.append(_convert(text, ann))
        except (ValueError, json.JSONDecodeError) as exc:
            return Response(500, f"{fname}: cannot parse argument '{pname}' as {tx.type_name(ann)}: "
                                 f"{_bounded(str(exc))}")
        except RecursionError:
            return Response(500, f"{fname}: argument '{pname}' is nested too deeply")
    return conv


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
        args = stub.get_args()
        if not args or not args[0]:
            return Response(200)
        return self.invoke(stub)

    def invoke(self, stub: Any) -> Response:
        """Route to the transaction; ``bytes`` parameters get the raw argument, others need UTF-8."""
        args = stub.get_args()
        if not args:
            return Response(500, "no function name given")
        try:
            fname = args[0].decode("utf-8")
        except UnicodeDecodeError:
            return Response(500, "the function name must be valid UTF-8")
        params = args[1:]
        if fname == METADATA_FN:
            return Response(200, "", _encode(self.metadata()))
        cname, sep, f = fname.rpartition(":")
        if not sep:
            cname = self._default
        tx = self._txs.get((cname, f))
        if tx is None:
            return Response(500, f"function {_bounded(fname)} not found")
        if len(params) != len(tx.params):
            return Response(500, f"{fname}: expected {len(tx.params)} arguments, got {len(params)}")
        conv = _convert_params(tx, fname, params)
        if isinstance(conv, Response):
            return conv
        return self._call(tx, fname, stub, conv)

    @staticmethod
    def _call(tx: "_Tx", fname: str, stub: Any, conv: list) -> Response:
        """Run the transaction; an unexpected exception is logged by type only (its text may hold payload)."""
        ctx = Context(stub)
        try:
            tx.contract.before_transaction(ctx, tx.name, tx.evaluate)
            return Response(200, "", _encode(tx.fn(ctx, *conv)))
        except ChaincodeError as exc:
            return Response(exc.status, exc.message)
        except tx.contract.error_types as exc:
            return Response(int(getattr(exc, "status", 400)), str(exc))
        except Exception as exc:
            tx_id, name = str(getattr(stub, "tx_id", ""))[:8], fname[:64]
            log.error("internal error in %r (tx %s): %s", name, tx_id, type(exc).__name__)
            log.debug("internal error in %r (tx %s) traceback", name, tx_id, exc_info=True)
            return Response(500, f"internal error in {fname}: {type(exc).__name__}: {_bounded(str(exc))}")

    def metadata(self) -> dict:
        out: dict[str, Any] = {"contracts": {}, "default": self._default}
        for c in self.contracts:
            txs = [{"name": t.name, "evaluate": t.evaluate,
                    "parameters": [{"name": n, "type": t.type_name(a)} for n, a in t.params]}
                   for (cn, _), t in sorted(self._txs.items()) if cn == c.name]
            out["contracts"][c.name] = {"name": c.name, "transactions": txs}
        return out
