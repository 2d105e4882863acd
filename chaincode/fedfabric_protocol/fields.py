"""Reading untrusted JSON objects field by field: types, ranges, patterns, unknown fields, no floats.

Every typed record of the protocol is parsed with a :class:`Fields` reader, so every error names
the field at fault (``spec.windows.submission_s``) and repeats at most a bounded part of the value.
A pattern must match the whole text (``fullmatch``: ``$`` alone would let a trailing newline
through), and :func:`ident` checks an id argument before it becomes part of a ledger key.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from .errors import refuse, show

HEX64 = re.compile(r"^[0-9a-f]{64}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_DEPTH = 8          # nesting of any record the protocol accepts
MAX_DECIMAL_PLACES = 18  # "1e-999990" would be a million characters once written out
REQUIRED = object()


def valid_text(value: str) -> bool:
    """``value`` is Unicode text that UTF-8 can carry (JSON's ``"\\ud800"`` escapes give lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def matches(pattern: re.Pattern, value: Any) -> bool:
    """``value`` is a string that ``pattern`` matches as a whole."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def ident(value: Any, what: str, pattern: re.Pattern = ID_RE) -> str:
    """An id argument (job, org, proposal, ...) checked before it is used in a key or a message."""
    if not matches(pattern, value):
        raise refuse(f"{what} must match {pattern.pattern}, got {show(value, 80)}")
    return value


def check_json(value: Any, path: str, depth: int = 0) -> None:
    """Refuse floats (fixed-point integers or decimal strings instead), non-string keys and deep nesting."""
    if depth > MAX_DEPTH:
        raise refuse(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float):
        raise refuse(f"{path}: floats are not allowed on the ledger; use an integer (e.g. milli-units) "
                     "or a decimal string")
    if isinstance(value, str) and not valid_text(value):
        raise refuse(f"{path}: not valid Unicode text (a lone surrogate)")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not valid_text(k):
                raise refuse(f"{path}: keys must be strings of valid Unicode text")
            check_json(v, f"{path}.{k[:64]}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_json(v, f"{path}[{i}]", depth + 1)


class Fields:
    """Typed access to one JSON object at ``path``; unknown fields are refused up front."""

    def __init__(self, value: Any, path: str, allowed: Iterable[str]) -> None:
        if not isinstance(value, dict):
            raise refuse(f"{path} must be a JSON object, got {type(value).__name__}")
        allowed = set(allowed)
        extra = sorted(k if isinstance(k, str) else repr(k) for k in value if k not in allowed)
        if extra:
            names = ", ".join(show(e, 64) for e in extra[:5])
            more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
            raise refuse(f"{path}: unknown field(s) {names}{more} (allowed: {', '.join(sorted(allowed)) or 'none'})")
        self.d, self.path = value, path

    def has(self, name: str) -> bool:
        return name in self.d

    def _get(self, name: str, default: Any) -> Any:
        v = self.d.get(name, default)
        if v is REQUIRED:
            raise refuse(f"{self.path}.{name} is required")
        return v

    def int(self, name: str, lo: int, hi: int, default: Any = REQUIRED) -> int:
        v = self._get(name, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise refuse(f"{self.path}.{name} must be an integer, got {show(v, 64)}")
        if not lo <= v <= hi:
            raise refuse(f"{self.path}.{name}={show(v, 64)} out of range [{lo}, {hi}]")
        return v

    def bool(self, name: str, default: Any = REQUIRED) -> bool:
        v = self._get(name, default)
        if not isinstance(v, bool):
            raise refuse(f"{self.path}.{name} must be true or false, got {show(v, 64)}")
        return v

    def text(self, name: str, pattern: re.Pattern = ID_RE, default: Any = REQUIRED) -> str:
        v = self._get(name, default)
        return ident(v, f"{self.path}.{name}", pattern)

    def hex64(self, name: str, default: Any = REQUIRED) -> str:
        v = self._get(name, default)
        if not matches(HEX64, v):
            raise refuse(f"{self.path}.{name} must be a lowercase hex SHA-256 (64 characters), got {show(v, 80)}")
        return v

    def choice(self, name: str, options: Iterable[str], default: Any = REQUIRED) -> str:
        options = tuple(options)
        v = self._get(name, default)
        if v not in options:
            raise refuse(f"{self.path}.{name} must be one of {', '.join(options)}, got {show(v, 64)}")
        return v

    def decimal(self, name: str, lo: str, hi: str, default: Any = REQUIRED) -> str:
        """A decimal given as a string or an integer, in [lo, hi]; returned normalized (``"0.05"``)."""
        v = self._get(name, default)
        if isinstance(v, bool) or not isinstance(v, (str, int)) or (isinstance(v, str) and len(v) > 40):
            raise refuse(f"{self.path}.{name} must be a decimal string such as \"0.05\", got {show(v, 64)}")
        try:
            d = Decimal(v)
        except InvalidOperation:
            raise refuse(f"{self.path}.{name} is not a decimal number: {show(v, 64)}") from None
        if not d.is_finite() or not Decimal(lo) <= d <= Decimal(hi):
            raise refuse(f"{self.path}.{name}={show(v, 64)} out of range [{lo}, {hi}]")
        if d and d.adjusted() < -MAX_DECIMAL_PLACES:
            raise refuse(f"{self.path}.{name}={show(v, 64)} has more than {MAX_DECIMAL_PLACES} decimal places")
        return decimal_text(d)

    def obj(self, name: str, default: Any = REQUIRED) -> Any:
        v = self._get(name, default)
        if not isinstance(v, dict):
            raise refuse(f"{self.path}.{name} must be a JSON object, got {type(v).__name__}")
        return v

    def str_list(self, name: str, pattern: re.Pattern, max_items: int, default: Any = REQUIRED) -> list[str]:
        v = self._get(name, default)
        if not isinstance(v, list) or len(v) > max_items:
            raise refuse(f"{self.path}.{name} must be a list of at most {max_items} strings")
        for i, x in enumerate(v):
            ident(x, f"{self.path}.{name}[{i}]", pattern)
        return list(v)


def decimal_text(d: Decimal) -> str:
    """Canonical text of a decimal: no exponent, no trailing zeros (``Decimal("1.50")`` -> ``"1.5"``)."""
    out = format(d.normalize(), "f")
    return "0" if out in ("-0", "") else out


def fraction(value: Any, path: str) -> tuple[int, int]:
    """A share in (0, 1] given as ``"2/3"`` or ``[2, 3]`` (what the ledger returns is accepted back)."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d{1,9})\s*/\s*(\d{1,9})\s*", value[:40])
        if not m or len(value) > 40:
            raise refuse(f"{path} must look like \"2/3\" or [2, 3], got {show(value, 40)}")
        num, den = int(m.group(1)), int(m.group(2))
    elif (isinstance(value, list) and len(value) == 2
          and all(isinstance(x, int) and not isinstance(x, bool) for x in value)):
        num, den = value
    else:
        raise refuse(f"{path} must look like \"2/3\" or [2, 3], got {show(value, 40)}")
    if not 0 < num <= den < 10**9:
        raise refuse(f"{path} {show(num, 20)}/{show(den, 20)} must be a share in (0, 1]")
    return num, den
