"""Hostile JSON for the contract's harnesses: a fuzz input read as decisions that mutate a valid record.

Bytes are consumed as decisions (:class:`Decisions`; an exhausted input decides 0 from then on), so
every byte sequence is a valid input and the empty input leaves the record well-formed. A mutation
walks to a node of the record and replaces it with a hostile value (NaN and infinities as JSON
numbers and as strings, huge and out-of-range integers, huge strings, 300-deep nesting, control
characters, lone surrogates, trailing newlines, wrong types), tweaks it (off by one, negated, doubled,
case-changed), deletes it, adds an unknown field, or changes its type. libFuzzer's coverage then
pulls the decisions towards the validators' unexplored branches.

:func:`check_refusal` is the property every validator must keep when it says no: a
:class:`ProtocolError` with an HTTP-like status and a message that repeats at most ``ECHO_LIMIT``
characters of any client-supplied text.
"""
from __future__ import annotations

import copy
import json
import math
from typing import Any, Iterable, Iterator

from fedfabric_protocol.errors import ECHO_LIMIT, ProtocolError

STATUSES = (400, 403, 404, 409)
MAX_MESSAGE = 1200     # a refusal names the field, the rule and a bounded echo: never more than this


class Finding(AssertionError):
    """An input broke one of a harness's properties."""


class Decisions:
    """The fuzz input as a stream of choices."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        """A choice in [0, n) (two bytes when n > 256)."""
        if n <= 1:
            return 0
        v = self.byte() if n <= 256 else self.byte() << 8 | self.byte()
        return v % n

    def chunk(self, max_len: int) -> bytes:
        n = min(self.below(max_len + 1), len(self.data) - self.pos)
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def text(self, max_len: int = 80) -> str:
        return self.chunk(max_len).decode("utf-8", "replace")

    def rest(self) -> bytes:
        out, self.pos = self.data[self.pos:], len(self.data)
        return out


class Raw:
    """A JSON text put into a record as is (what a hostile client writes, e.g. ``NaN`` or 20000 ``[``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


def _nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "0" + "}" * depth)


# JSON texts a hostile client sends in place of any value
HOSTILE_TEXTS = (
    "null", "true", "false", "0", "-1", "1", "2", "-0", "63", "64", "256", "257", "1000", "10000", "10001",
    "2147483647", "2147483648", "-2147483649", "9007199254740993", "1000000000000001", "-1000000000000001",
    "1" + "0" * 400, "-" + "9" * 400, "1" * 4300,
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "0.5", "1.0", "-0.0", "1e308", "5e-324",
    '"NaN"', '"Infinity"', '"-inf"', '"1e999"', '"1e-999999999"', '"1E+999999999"', '"0E-999999999"', '"sNaN"',
    '"-0"', '"0x10"', '"1_000"', '"\\u0661\\u0662"', '"\\u00b2"', '" 1"', '"1\\n"', '"2/3"', '"0/0"', '"3/2"',
    '"99999999999/1"', '""', '"' + "x" * 5000 + '"', '"\\u0000"', '"\\udbff\\udfff"', '"\\ud800"', '"a\\n"',
    '"Org1MSP\\n"', '"Org1MSP"', '"Org4MSP"', '"EvilMSP"', '"' + "ab" * 32 + '\\n"', '"' + "AB" * 32 + '"',
    '"' + "0" * 64 + '"', '"' + "0" * 63 + '"', '"latest"', '"\\u202eevil"', '"<script>"',
    "[]", "{}", "[null]", '{"": null}', '["Org1MSP","Org1MSP"]', '["Org1MSP","Org2MSP","Org3MSP","Org4MSP"]',
    "[" + ",".join(str(i) for i in range(3000)) + "]",
    "{" + ",".join(f'"k{i}":{i}' for i in range(300)) + "}",
    '{"a":1,"a":2}', _nested(300, "list"), _nested(300, "dict"), _nested(20000, "list"),
)


def _parsed(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


# the same values parsed (for the harnesses that call a validator directly); texts no JSON parser
# accepts (too deep, too many digits) are only sent whole, through the contract's own argument parsing
HOSTILE_VALUES = tuple(v for ok, v in map(_parsed, HOSTILE_TEXTS) if ok)


def _hostile(d: Decisions, raw: bool) -> Any:
    if raw:
        return Raw(HOSTILE_TEXTS[d.below(len(HOSTILE_TEXTS))])
    return copy.deepcopy(HOSTILE_VALUES[d.below(len(HOSTILE_VALUES))])


def tweak(v: Any, d: Decisions) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return (v + 1, v - 1, -v, 0, v * (1 << 32), v // 2, v + 10**6, -v - 1)[d.below(8)]
    if isinstance(v, str):
        return (v + "\n", v.upper(), v * 2, v[:-1], "", v + "\x00", " " + v, v + "/0")[d.below(8)]
    if isinstance(v, float):
        return (math.nan, math.inf, -v, v * 1e300)[d.below(4)]
    if isinstance(v, list):
        return v + v[:1] if v else [None]
    if isinstance(v, dict):
        return {**v, d.text(16): v}
    return v


def _retype(v: Any, d: Decisions) -> Any:
    choice = d.below(5)
    if choice == 0:
        return dump(v)
    if choice == 1:
        return [v]
    if choice == 2:
        return {"value": v}
    if choice == 3:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) < 1 << 60 else None
    return str(v) if not isinstance(v, str) else (int(v) if v.isascii() and v.isdigit() and len(v) < 30 else len(v))


def mutate(value: Any, d: Decisions, raw: bool = False, steps: int | None = None) -> Any:
    """A deep copy of ``value`` with up to ``steps`` mutations chosen by ``d`` (``raw``: hostile values
    as :class:`Raw` JSON texts for :func:`dump`, else as parsed values)."""
    holder = [copy.deepcopy(value)]
    for _ in range(d.below(5) if steps is None else steps):
        container: Any = holder
        key: Any = 0
        while True:
            cur = container[key]
            if isinstance(cur, (dict, list)) and cur and d.below(4):
                keys = sorted(cur) if isinstance(cur, dict) else range(len(cur))
                container, key = cur, keys[d.below(len(keys))]
            else:
                break
        op = d.below(9)
        if op <= 2:
            container[key] = _hostile(d, raw)
        elif op == 3:
            container[key] = d.text()
        elif op == 4:
            if container is holder:
                holder[0] = None
            elif isinstance(container, dict):
                del container[key]
            else:
                container.pop(key)
        elif op == 5 and isinstance(cur, dict):
            cur[d.text(24) or "unknown"] = _hostile(d, raw)
        elif op == 6:
            container[key] = tweak(cur, d)
        elif op == 7:
            container[key] = _retype(cur, d)
        else:
            container[key] = _hostile(d, raw) if d.below(2) else tweak(cur, d)
    return holder[0]


def dump(value: Any) -> str:
    """``value`` as the JSON text a client sends (:class:`Raw` parts verbatim; NaN and infinities as
    the bare ``NaN``/``Infinity`` tokens Python's parser accepts)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def texts_in(value: Any) -> Iterator[str]:
    """Every string of ``value`` (keys too) and every integer's digits: what a message could echo."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Raw):
            yield v.text
        elif isinstance(v, str):
            yield v
        elif isinstance(v, int) and not isinstance(v, bool):
            if abs(v) < 10**300:
                yield str(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


def echoed(message: str, inputs: Iterable[str], limit: int = ECHO_LIMIT) -> str:
    """The first input of which ``message`` repeats more than ``limit`` consecutive characters ("" if none).

    Any such run contains one of the message's probes (``limit // 2 + 1`` characters starting every
    ``limit // 2``), so only the runs around a probe found in the input are compared in full."""
    long_inputs = [t for t in inputs if len(t) > limit]
    if not long_inputs or len(message) <= limit:
        return ""
    step = limit // 2
    for i in range(0, len(message) - step, step):
        probe = message[i:i + step + 1]
        for t in long_inputs:
            if probe in t and any(message[j:j + limit + 1] in t
                                  for j in range(max(0, i - limit), min(i, len(message) - limit - 1) + 1)):
                return t
    return ""


def check_refusal(exc: ProtocolError, inputs: Iterable[str], what: str) -> None:
    """The properties of a refusal: a known status, a bounded message, a bounded echo of the input."""
    if exc.status not in STATUSES:
        raise Finding(f"{what}: status {exc.status} for {exc.message[:200]!r}")
    if not isinstance(exc.message, str) or len(exc.message) > MAX_MESSAGE:
        raise Finding(f"{what}: a refusal of {len(str(exc.message))} characters: {str(exc.message)[:200]!r}")
    hit = echoed(exc.message, inputs)
    if hit:
        raise Finding(f"{what}: the message repeats more than {ECHO_LIMIT} characters of the input "
                      f"({len(hit)} characters): {exc.message[:300]!r}")
