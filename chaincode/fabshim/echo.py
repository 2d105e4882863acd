"""Bounds on what the shim repeats of its input in the error texts it sends and the lines it logs.

Whatever the shim echoes (a transaction id, a key, an exception's text) is cut to ``ECHO_LIMIT``
characters. Every error text the shim hands back to the peer is also cut to ``MAX_ERROR_TEXT``: the
peer passes it on to the client inside gRPC trailers, and trailers past the client's header limit
(8 KiB by default) end the call with RST_STREAM instead of the message.
"""
from __future__ import annotations

import traceback

ECHO_LIMIT = 200
MAX_ERROR_TEXT = 1024


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` if it has at most ``limit`` characters, else its first ``limit`` and the full length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def error_text(text: str) -> str:
    """An error text as the shim sends it back: at most ``MAX_ERROR_TEXT`` characters (plus the length note)."""
    return clip(text, MAX_ERROR_TEXT)


def traceback_text(exc: BaseException) -> str:
    """``exc``'s traceback (frames and source lines) with its message clipped, for a DEBUG log line."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"Traceback (most recent call last):\n{frames}{type(exc).__name__}: {clip(str(exc))}"
