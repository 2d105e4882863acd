"""Finds every file under a directory that holds a private key, and what could expose it.

A file holds a key when it is in a ``keystore`` directory (Fabric's MSP layout: PEM keys, the Fabric
CA's idemix keys), contains ``PRIVATE KEY`` (PEM, also inside JSON such as connection.json), or is a
gzip (tar) archive with such a file inside (a chaincode package). Exposed: the file has any group or
other permission bit, or so has one of the directories from it up to the scanned root (included).
Symbolic links are not followed.
"""
from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zlib
from pathlib import Path

MARK = b"PRIVATE KEY"
MAX_READ = 64 << 20


def _has_key(data: bytes, depth: int = 0) -> bool:
    if MARK in data:
        return True
    if depth > 3 or not data.startswith(b"\x1f\x8b"):
        return False
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return False
    if _has_key(raw, depth + 1):
        return True
    try:
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            return any(_has_key(tar.extractfile(m).read(), depth + 1) for m in tar.getmembers() if m.isfile())
    except tarfile.TarError:
        return False


def holds_key(path: Path) -> bool:
    if path.parent.name == "keystore":
        return True
    if path.stat().st_size > MAX_READ:
        return False
    return _has_key(path.read_bytes())


def key_files(root: Path) -> list[Path]:
    """Every regular file under ``root`` that holds a private key."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if stat.S_ISREG(p.lstat().st_mode) and holds_key(p):
                out.append(p)
    return sorted(out)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def exposures(root: Path, files: list[Path]) -> list[str]:
    """``path mode`` for each key file, and each directory above one up to ``root``, with group/other bits."""
    bad: dict[Path, int] = {}
    for f in files:
        if _mode(f) & 0o077:
            bad[f] = _mode(f)
        d = f.parent
        while True:
            if _mode(d) & 0o077:
                bad[d] = _mode(d)
            if d == root or d == d.parent:
                break
            d = d.parent
    return [f"{p} {m:04o}" for p, m in sorted(bad.items())]
