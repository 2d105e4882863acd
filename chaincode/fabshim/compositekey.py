"""Composite keys, following the Go shim's rules."""
from __future__ import annotations

MIN_RUNE = "\x00"
MAX_RUNE = "\U0010ffff"
NS = "\x00"


def _validate(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not a valid utf8 string: {exc}") from None
    pos = 0  # byte offset in the UTF-8 encoding, as Go reports it
    for ch in s:
        if ch == MIN_RUNE or ch == MAX_RUNE:
            raise ValueError(f"input contains unicode U+{ord(ch):04X} starting at position [{pos}]. "
                             "U+0000 and U+10FFFF are not allowed in the input attribute of a composite key")
        pos += len(ch.encode("utf-8"))


def create_composite_key(object_type: str, attrs: list[str]) -> str:
    """``\\x00`` + type + ``\\x00`` + each attribute + ``\\x00``."""
    _validate(object_type)
    key = NS + object_type + MIN_RUNE
    for a in attrs:
        _validate(a)
        key += a + MIN_RUNE
    return key


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """Inverse of :func:`create_composite_key`."""
    parts = key[1:].split(MIN_RUNE) if key.startswith(NS) else key.split(MIN_RUNE)
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if not parts:
        return "", []
    return parts[0], parts[1:]
