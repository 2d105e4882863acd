"""The one error type of the protocol: a rule was broken, with an HTTP-like status and a bounded text."""
from __future__ import annotations

from typing import Any

ECHO_LIMIT = 200   # characters of any client-supplied value an error message repeats


class ProtocolError(ValueError):
    """An input or a moment that the protocol refuses.

    ``status`` follows HTTP: 400 malformed input, 403 not allowed for this caller, 404 unknown id,
    409 right input at the wrong time or state. The chaincode answers with ``status`` and the text;
    the node treats 409 as "someone else already did it" or "not yet".
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def show(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters: what an error may repeat of a client's input."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):   # nested deeper than repr goes; an int of over 4300 digits
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def refuse(message: str, status: int = 400) -> ProtocolError:
    """A :class:`ProtocolError` to ``raise``."""
    return ProtocolError(message, status)
