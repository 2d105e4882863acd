"""Locate the pinned Fabric binaries and run the Fabric CLIs with errors that say what failed."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import paths

REQUIRED = ("peer", "orderer", "configtxgen", "osnadmin", "cryptogen", "configtxlator",
            "fabric-ca-server")


class FabricBinaryError(RuntimeError):
    """A Fabric binary is missing or a Fabric CLI call failed."""


def read_pin(pin_file: Path = paths.PIN_FILE) -> dict[str, str]:
    """The ``KEY=value`` pairs of ``network/fabric.pin`` (shell syntax, comments ignored)."""
    pin: dict[str, str] = {}
    for line in pin_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        pin[key.strip()] = " ".join(shlex.split(value))
    return pin


def cache_dir(pin: dict[str, str] | None = None) -> Path:
    pin = pin or read_pin()
    return paths.cache_root() / "fabric" / f"{pin['FABRIC_RELEASE']}-{pin['FABRIC_MODULE_VERSION']}"


@dataclass(frozen=True)
class FabricInstall:
    """The binaries and the sample configuration of one Fabric build."""

    bin_dir: Path
    config_dir: Path

    def binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FabricBinaryError(
                f"Fabric binary {name!r} not found at {path}; build it with network/build-fabric.sh "
                "(or point FEDFABRIC_FABRIC_BIN at a directory that has it)")
        return path

    def check(self) -> None:
        for name in REQUIRED:
            self.binary(name)
        for name in ("core.yaml", "orderer.yaml"):
            if not (self.config_dir / name).is_file():
                raise FabricBinaryError(f"Fabric sample config {name} missing in {self.config_dir}; "
                                        "rebuild with network/build-fabric.sh --force")

    def run(self, name: str, args: list[str], env: dict[str, str] | None = None,
            timeout: float = 120, what: str | None = None) -> str:
        """Run a Fabric CLI; on failure raise with the command's own error output."""
        cmd = [str(self.binary(name)), *args]
        full_env = {**os.environ, **(env or {})}
        try:
            proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise FabricBinaryError(f"{what or name}: timed out after {timeout:.0f}s") from exc
        if proc.returncode != 0:
            err = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-8:]
            raise FabricBinaryError(f"{what or name} failed (exit {proc.returncode}): " + "\n  ".join(err))
        return proc.stdout + proc.stderr


def locate() -> FabricInstall:
    """The Fabric install to use: ``$FEDFABRIC_FABRIC_BIN`` or the pinned build in the cache."""
    override = os.environ.get("FEDFABRIC_FABRIC_BIN")
    if override:
        bin_dir = Path(override).resolve()
        cfg = Path(os.environ.get("FEDFABRIC_FABRIC_CONFIG", bin_dir.parent / "config")).resolve()
        return FabricInstall(bin_dir, cfg)
    base = cache_dir()
    return FabricInstall(base / "bin", base / "config")


def build(force: bool = False) -> FabricInstall:
    """Build (or reuse) the pinned binaries via ``network/build-fabric.sh``."""
    cmd = [str(paths.BUILD_SCRIPT)] + (["--force"] if force else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FabricBinaryError(f"network/build-fabric.sh failed:\n{proc.stderr[-3000:]}")
    bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    return FabricInstall(bin_dir, bin_dir.parent / "config")
