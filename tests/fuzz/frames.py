"""The fuzz input format shared by the harnesses: a sequence of length-delimited frames.

Each frame is a varint length followed by that many bytes (protobuf's delimited encoding). A
truncated last frame is cut to what is there; the input is never refused, so every byte sequence
the fuzzer makes is a valid input.
"""
from __future__ import annotations

from typing import Iterable, Iterator

MAX_FRAMES = 64


def split(data: bytes) -> Iterator[bytes]:
    """The frames of ``data`` (at most ``MAX_FRAMES``)."""
    pos, count = 0, 0
    while pos < len(data) and count < MAX_FRAMES:
        length, shift = 0, 0
        while pos < len(data) and shift < 35:
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        yield data[pos:pos + length]
        pos += length
        count += 1


def join(frames: Iterable[bytes]) -> bytes:
    """The input whose frames are ``frames`` (to write seeds and regression inputs)."""
    out = bytearray()
    for f in frames:
        n = len(f)
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                break
        out += f
    return bytes(out)
