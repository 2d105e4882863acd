"""Where things live: the repository's network/ directory, the run directory, the binary cache."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
NETWORK_DIR = REPO_ROOT / "network"
DEFAULT_CONFIG = NETWORK_DIR / "consortium.yaml"
PIN_FILE = NETWORK_DIR / "fabric.pin"
BUILD_SCRIPT = NETWORK_DIR / "build-fabric.sh"
BUILDERS_DIR = NETWORK_DIR / "builders"


def run_dir() -> Path:
    """All generated state (crypto, blocks, ledgers, logs, pids): ``$FEDFABRIC_RUN_DIR`` or ``run/``."""
    return Path(os.environ.get("FEDFABRIC_RUN_DIR", REPO_ROOT / "run")).resolve()


def cache_root() -> Path:
    return Path(os.environ.get("FEDFABRIC_CACHE", Path.home() / ".cache" / "fedfabric")).resolve()
