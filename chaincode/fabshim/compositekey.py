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
    """Inverse of :func:`create_composite_key`, with the rules of Go's ``SplitCompositeKey``.

    The first character is skipped whatever it is (normally the ``\\x00`` namespace), each
    component ends at a ``\\x00`` and text after the last one is dropped: ``"a\\x00b\\x00"``
    gives ``("", ["b"])`` and ``"\\x00t\\x00x"`` gives ``("t", [])``. A key with no ``\\x00`` after
    its first character has no object type: ``ValueError`` (Go indexes an empty slice and panics).
    Go skips one byte, Python one character: they differ only for a non-ASCII first character.
    """
    parts = key[1:].split(MIN_RUNE)
    if len(parts) < 2:
        raise ValueError("invalid composite key: no U+0000 separator after the first character")
    components = parts[:-1]
    return components[0], components[1:]
