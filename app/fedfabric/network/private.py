"""Owner-only files and directories for what holds a private key: 0600 files, 0700 directories.

The network's processes (peers, orderers, Fabric CA servers) and Fabric CLIs (cryptogen, ...) run
with ``CHILD_UMASK``, so what they write themselves (cryptogen's tree, installed chaincode packages,
the external builder's copies of connection.json, the CA's idemix keys, ledgers) is owner-only as
well; this process writes its own key files through :func:`write_private` and :func:`private_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

CHILD_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` as an owner-only directory; missing parents are created owner-only too."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
        d.chmod(DIR_MODE)
    path.chmod(DIR_MODE)
    return path


def private_tree(root: Path) -> None:
    """Make ``root`` and every directory below it owner-only (files keep their modes)."""
    private_dir(root)
    for dirpath, dirnames, _files in os.walk(root):
        for name in dirnames:
            d = Path(dirpath) / name
            if not d.is_symlink():
                d.chmod(DIR_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, mode 0600 from the start (atomic replace), in an owner-only directory."""
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)
