"""Locate the pinned Fabric binaries and run the Fabric CLIs with errors that say what failed."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .private import CHILD_UMASK

REQUIRED = ("peer", "orderer", "configtxgen", "osnadmin", "cryptogen", "configtxlator",
            "fabric-ca-server")


BUILD_HINT = "network/network.sh build"
STAMP = ".pin"        # written by build-fabric.sh into the cache dir: pin=<digest>, script=<digest>


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


def pin_digest(pin_file: Path = paths.PIN_FILE) -> str:
    """What build-fabric.sh stamps as ``pin=``: SHA-256 of the pin's lines not starting with '#'
    (``grep -v '^#' fabric.pin | sha256sum``)."""
    lines = pin_file.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return hashlib.sha256(b"".join(line + b"\n" for line in lines if not line.startswith(b"#"))).hexdigest()


def script_digest(script: Path = paths.BUILD_SCRIPT) -> str:
    """What build-fabric.sh stamps as ``script=``: SHA-256 of the build script itself."""
    return hashlib.sha256(script.read_bytes()).hexdigest()


def expected_stamp() -> dict[str, str]:
    return {"pin": pin_digest(), "script": script_digest()}


def read_stamp(base: Path) -> dict[str, str] | None:
    """The ``key=value`` lines of ``<cache dir>/.pin``; None when there is no stamp."""
    try:
        text = (base / STAMP).read_text()
    except OSError:
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@dataclass(frozen=True)
class FabricInstall:
    """The binaries and the sample configuration of one Fabric build."""

    bin_dir: Path
    config_dir: Path
    origin: str = ""      # where bin_dir came from, for error messages

    def binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            where = f"looked in {self.bin_dir}" + (f", {self.origin}" if self.origin else "")
            raise FabricBinaryError(
                f"Fabric binary {name!r} not found at {path} ({where}); build it with {BUILD_HINT}")
        return path

    def check(self) -> None:
        for name in REQUIRED:
            self.binary(name)
        for name in ("core.yaml", "orderer.yaml"):
            if not (self.config_dir / name).is_file():
                raise FabricBinaryError(f"Fabric sample config {name} missing in {self.config_dir}; "
                                        f"rebuild with {BUILD_HINT} --force")

    def run(self, name: str, args: list[str], env: dict[str, str] | None = None,
            timeout: float = 120, what: str | None = None) -> str:
        """Run a Fabric CLI (umask 077: cryptogen's keys and directories are owner-only); on failure
        raise with the command's own error output."""
        cmd = [str(self.binary(name)), *args]
        full_env = {**os.environ, **(env or {})}
        try:
            proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout,
                                  umask=CHILD_UMASK)
        except subprocess.TimeoutExpired as exc:
            raise FabricBinaryError(f"{what or name}: timed out after {timeout:.0f}s") from exc
        if proc.returncode != 0:
            err = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-8:]
            raise FabricBinaryError(f"{what or name} failed (exit {proc.returncode}): " + "\n  ".join(err))
        return proc.stdout + proc.stderr


def locate() -> FabricInstall:
    """The Fabric install to use: ``$FEDFABRIC_FABRIC_BIN`` or the pinned build in the cache.

    A cached build must carry the stamp of the current pin and build script (see
    ``network/build-fabric.sh``); a missing cache is left to :meth:`FabricInstall.binary` to report.
    """
    override = os.environ.get("FEDFABRIC_FABRIC_BIN")
    if override:
        bin_dir = Path(override).resolve()
        cfg = Path(os.environ.get("FEDFABRIC_FABRIC_CONFIG", bin_dir.parent / "config")).resolve()
        return FabricInstall(bin_dir, cfg, origin="from FEDFABRIC_FABRIC_BIN")
    base = cache_dir()
    inst = FabricInstall(base / "bin", base / "config", origin="the pinned build's cache")
    if inst.bin_dir.is_dir():
        check_stamp(base)
    return inst


def check_stamp(base: Path) -> None:
    """Raise unless ``base`` was built from the current ``fabric.pin`` by the current build script."""
    stamp, want = read_stamp(base), expected_stamp()
    bin_dir = base / "bin"
    if stamp is None:
        raise FabricBinaryError(f"binaries in {bin_dir} have no build stamp ({base / STAMP}: an interrupted "
                                f"or older build); run {BUILD_HINT}")
    if stamp.get("pin") != want["pin"]:
        raise FabricBinaryError(f"binaries in {bin_dir} were built for another pin; run {BUILD_HINT}")
    if stamp.get("script") != want["script"]:
        raise FabricBinaryError(f"binaries in {bin_dir} were built by another version of "
                                f"network/build-fabric.sh; run {BUILD_HINT}")


def build(force: bool = False) -> FabricInstall:
    """Build (or reuse) the pinned binaries via ``network/build-fabric.sh``."""
    cmd = [str(paths.BUILD_SCRIPT)] + (["--force"] if force else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FabricBinaryError(f"network/build-fabric.sh failed:\n{proc.stderr[-3000:]}")
    bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    return FabricInstall(bin_dir, bin_dir.parent / "config", origin="the pinned build's cache")
