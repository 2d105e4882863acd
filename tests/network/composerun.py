"""Test helper: run a compose service the way its container would, without a Docker engine (needs root).

The service's own command runs from the pinned Fabric build, in a mount namespace of its own where a
fresh tmpfs stands for the container's file system: only the service's bind mounts are in it (read-only
ones remounted read-only; a missing source fails, as ``create_host_path: false`` makes compose fail),
plus the chaincode-as-a-service builder at the image's path. The service's environment is used as it
is, its container paths moved under that tmpfs, and nothing else of this process's environment but
PATH: a node that needs a file its mounts do not give it, or that writes where it may not, fails here
as it would in its container. The process is not tagged as one of a run directory's nodes, so
``network.sh up`` treats it like a container: a healthy node run by something else.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from fedfabric.network import paths
from fedfabric.network.compose import CONTAINER_RUN, IMAGE_BUILDER
from fedfabric.network.fabricbin import FabricInstall


def start(svc: dict, base_dir: Path, fs: Path, fabric: FabricInstall, log: Path) -> subprocess.Popen[bytes]:
    """Start the compose service ``svc`` of a file in ``base_dir``; ``fs`` (an empty directory) becomes
    its file system's root for the paths it mounts."""
    fs.mkdir(parents=True, exist_ok=True)
    binds = [((base_dir / v["source"]).resolve(), v["target"], v["read_only"]) for v in svc["volumes"]]
    binds.append((paths.BUILDERS_DIR / "ccaas", IMAGE_BUILDER, True))
    script = [f"mount -t tmpfs -o mode=0755 fedfabric-fs {shlex.quote(str(fs))}"]
    for source, target, read_only in binds:
        inside = shlex.quote(f"{fs}{target}")
        script += [f"test -d {shlex.quote(str(source))} || {{ echo 'bind source missing: {source}' >&2; exit 90; }}",
                   f"mkdir -p {inside}", f"mount --bind {shlex.quote(str(source))} {inside}"]
        if read_only:
            script.append(f"mount -o remount,bind,ro {inside}")
    argv = svc["command"].split()
    script.append("exec " + shlex.join([str(fabric.binary(argv[0])), *argv[1:]]))
    env = {k: v.replace(CONTAINER_RUN, f"{fs}{CONTAINER_RUN}").replace(IMAGE_BUILDER, f"{fs}{IMAGE_BUILDER}")
           for k, v in svc["environment"].items()}
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        return subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", "-ec", "\n".join(script)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd="/")


def stop(procs: list[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """SIGTERM to each process group, SIGKILL after ``grace`` seconds; every one is waited for."""
    for p in procs:
        if p.poll() is None:
            _signal(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(p, signal.SIGKILL)
            p.wait(timeout=10)


def _signal(p: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
