"""Test helper: which processes belong to a run directory (they inherit FEDFABRIC_RUN_DIR)."""

from __future__ import annotations

import os
from pathlib import Path


def run_dir_processes(run_root: Path) -> list[int]:
    """Live processes (not zombies) whose environment has FEDFABRIC_RUN_DIR=<run_root>, chaincode
    server children included; never this process."""
    needle = f"FEDFABRIC_RUN_DIR={run_root}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            environ = (d / "environ").read_bytes().split(b"\0")
            state = (d / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if needle in environ and state != "Z":
            pids.append(int(d.name))
    return pids
