"""The pinned build's cache: stamp check in locate(), Python and build-fabric.sh agreeing on the stamp,
and the Go settings the build uses (module proxy only)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fedfabric.network import fabricbin, paths
from fedfabric.network.fabricbin import FabricBinaryError


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    """An empty FEDFABRIC_CACHE; returns the directory the pinned build would live in."""
    monkeypatch.setenv("FEDFABRIC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FEDFABRIC_FABRIC_BIN", raising=False)
    base = fabricbin.cache_dir()
    (base / "bin").mkdir(parents=True)
    return base


def _stamp(base: Path, pin: str, script: str) -> None:
    (base / ".pin").write_text(f"pin={pin}\nscript={script}\n")


def test_locate_accepts_a_current_stamp(cache) -> None:
    want = fabricbin.expected_stamp()
    _stamp(cache, want["pin"], want["script"])
    inst = fabricbin.locate()
    assert inst.bin_dir == cache / "bin" and inst.config_dir == cache / "config"


def test_locate_refuses_a_build_for_another_pin(cache) -> None:
    _stamp(cache, "0" * 64, fabricbin.script_digest())
    with pytest.raises(FabricBinaryError) as err:
        fabricbin.locate()
    assert str(err.value) == (f"binaries in {cache / 'bin'} were built for another pin; "
                              "run network/network.sh build")


def test_locate_refuses_a_build_by_another_script(cache) -> None:
    _stamp(cache, fabricbin.pin_digest(), "f" * 64)
    with pytest.raises(FabricBinaryError) as err:
        fabricbin.locate()
    assert str(err.value) == (f"binaries in {cache / 'bin'} were built by another version of "
                              "network/build-fabric.sh; run network/network.sh build")


def test_locate_refuses_an_unstamped_build(cache) -> None:
    """The stamp format before the script digest was added (one bare digest line) counts as another pin."""
    with pytest.raises(FabricBinaryError, match=r"have no build stamp .*; run network/network.sh build$"):
        fabricbin.locate()
    (cache / ".pin").write_text(fabricbin.pin_digest() + "\n")
    with pytest.raises(FabricBinaryError, match="were built for another pin; run network/network.sh build"):
        fabricbin.locate()


def test_missing_cache_is_reported_as_a_missing_binary(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FEDFABRIC_CACHE", str(tmp_path / "nothing"))
    monkeypatch.delenv("FEDFABRIC_FABRIC_BIN", raising=False)
    inst = fabricbin.locate()
    with pytest.raises(FabricBinaryError) as err:
        inst.check()
    assert str(err.value) == (f"Fabric binary 'peer' not found at {inst.bin_dir / 'peer'} (looked in "
                              f"{inst.bin_dir}, the pinned build's cache); build it with network/network.sh build")


def test_pin_digest_is_the_shell_digest(tmp_path) -> None:
    for text in ("# c\nA=1\n  # indented stays\n\nB='x y'\n", "A=1\n#c", "#only\nA=2"):
        pin = tmp_path / "fabric.pin"
        pin.write_text(text)
        shell = subprocess.run(["bash", "-c", f"grep -v '^#' '{pin}' | sha256sum | cut -d' ' -f1"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert fabricbin.pin_digest(pin) == shell, text
    assert fabricbin.pin_digest() == subprocess.run(
        ["bash", "-c", f"grep -v '^#' '{paths.PIN_FILE}' | sha256sum | cut -d' ' -f1"],
        capture_output=True, text=True, check=True).stdout.strip()


def test_build_script_accepts_the_stamp_python_expects(cache) -> None:
    """build-fabric.sh finds a cache stamped as locate() wants current (without go on PATH: a
    disagreement would make it try to build and fail at once)."""
    want = fabricbin.expected_stamp()
    _stamp(cache, want["pin"], want["script"])
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(paths.BUILD_SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(cache / "bin")


def test_build_script_rebuilds_after_its_own_edit(tmp_path, cache) -> None:
    """A copy of network/ whose build script differs by one comment line is stale for that script."""
    net = tmp_path / "network"
    net.mkdir()
    shutil.copy(paths.PIN_FILE, net / "fabric.pin")
    script = net / "build-fabric.sh"
    script.write_text(paths.BUILD_SCRIPT.read_text() + "# edited\n")
    script.chmod(0o755)
    want = fabricbin.expected_stamp()
    _stamp(cache, want["pin"], want["script"])
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1 and "'go' not found on PATH" in out.stderr   # it wanted to build


go = pytest.mark.skipif(shutil.which("go") is None, reason="needs go")


def _go_env(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **overrides}
    return subprocess.run([str(paths.BUILD_SCRIPT), "--go-env"], capture_output=True, text=True, env=env,
                          timeout=60)


@go
@pytest.mark.parametrize("configured,used", [
    ("https://proxy.golang.org,direct", "https://proxy.golang.org"),
    ("https://proxy.golang.org|direct", "https://proxy.golang.org"),
    ("https://a.example|direct,https://b.example", "https://a.example,https://b.example"),
    ("https://proxy.golang.org", "https://proxy.golang.org"),
])
def test_build_uses_the_module_proxy_only(configured, used) -> None:
    out = _go_env(GOPROXY=configured, GOPRIVATE="github.com/hyperledger", GONOSUMDB="github.com")
    assert out.returncode == 0, out.stderr
    settings = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert settings["GOPROXY"] == used
    assert settings["GONOPROXY"] == "" and settings["GONOSUMDB"] == "" and settings["GOSUMDB"] != "off"
    assert settings["GOTOOLCHAIN"] == "local" and "-mod=mod" in settings["GOFLAGS"]


@go
@pytest.mark.parametrize("overrides,message", [
    ({"GOPROXY": "direct"}, "GOPROXY='direct' names no module proxy"),
    ({"GOPROXY": "off"}, "GOPROXY='off' names no module proxy"),
    ({"GOSUMDB": "off"}, "GOSUMDB=off: module checksums would not be verified"),
])
def test_build_refuses_settings_that_bypass_the_proxy(overrides, message) -> None:
    out = _go_env(**overrides)
    assert out.returncode == 1 and message in out.stderr, out.stderr


@go
def test_build_refuses_go_env_file_private_modules(tmp_path) -> None:
    goenv = tmp_path / "goenv"
    goenv.write_text("GOPRIVATE=github.com/hyperledger\n")
    out = _go_env(GOENV=str(goenv))
    assert out.returncode == 1
    assert "GONOPROXY='github.com/hyperledger' (go env) would let modules bypass the module proxy" in out.stderr
