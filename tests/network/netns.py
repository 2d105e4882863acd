"""Test helper: hosts as Linux network namespaces on one bridge (needs root).

``Hosts(prefix, subnet, names)`` creates a bridge ``<prefix>br`` with the subnet's first address, and
per name a namespace ``<prefix>-<name>`` joined to the bridge by a veth pair (``<prefix>v-<name>`` on
the bridge, ``<prefix>p-<name>`` inside), with its own address and loopback up. ``cut(name)`` /
``restore(name)`` take the host's link down and up. ``close()`` stops whatever still runs inside the
namespaces (only processes in them: they are this test's), then deletes namespaces, veths and the
bridge; it also clears what an earlier, crashed run with the same prefix left behind.
"""
from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Hosts:
    def __init__(self, prefix: str, subnet: str, names: list[str]) -> None:
        self.prefix, self.net = prefix, ipaddress.ip_network(subnet)
        self.bridge = f"{prefix}br"
        hosts = list(self.net.hosts())
        self.gateway = str(hosts[0])
        self.address = {n: str(hosts[10 + i]) for i, n in enumerate(names)}
        self.close()
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def launcher(self, name: str) -> tuple[str, ...]:
        """What runs a command inside ``name``'s namespace (exec'd in place: same pid)."""
        return ("ip", "netns", "exec", self.ns(name))

    def _create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.net.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for name, addr in self.address.items():
            ns, outer, inner = self.ns(name), f"{self.prefix}v-{name}", f"{self.prefix}p-{name}"
            _ip("netns", "add", ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("-n", ns, "addr", "add", f"{addr}/{self.net.prefixlen}", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def cut(self, name: str) -> None:
        _ip("link", "set", f"{self.prefix}v-{name}", "down")

    def restore(self, name: str) -> None:
        _ip("link", "set", f"{self.prefix}v-{name}", "up")

    def ours(self) -> list[str]:
        return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines()
                if line.split() and line.split()[0].startswith(f"{self.prefix}-")]

    def pids(self) -> list[int]:
        out = []
        for ns in self.ours():
            out += [int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split()]
        return out

    def close(self) -> None:
        """Stop processes still inside our namespaces (SIGTERM, then SIGKILL), delete everything."""
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        for ns in self.ours():
            _ip("netns", "del", ns, check=False)
        for line in _ip("-o", "link", "show").stdout.splitlines():
            dev = line.split(":")[1].strip().split("@")[0]
            if dev.startswith(f"{self.prefix}v-"):
                _ip("link", "del", dev, check=False)
        _ip("link", "del", self.bridge, check=False)

    def leftovers(self) -> list[str]:
        """Namespaces, links and processes of ours that still exist."""
        links = [line.split(":")[1].strip().split("@")[0] for line in _ip("-o", "link", "show").stdout.splitlines()]
        return ([f"netns {n}" for n in self.ours()] + [f"link {d}" for d in links if d.startswith(self.prefix)]
                + [f"pid {p}" for p in self.pids()])
