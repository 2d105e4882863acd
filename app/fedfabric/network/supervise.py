"""A tiny process supervisor for chaincode servers: restart the child when it dies.

    python -m fedfabric.network.supervise [--grace SECONDS] -- CMD ARGS...

SIGTERM/SIGINT to the supervisor stop the child (SIGTERM, then SIGKILL after ``--grace``, default
:data:`CHILD_GRACE` s) and exit. The grace exceeds the chaincode server's own drain (10 s) and stays
below the network's stop grace (``nodes.STOP_GRACE``), which then SIGKILLs the whole process group:
the child never outlives a stop. Restarts back off from 0.5 s up to 10 s; a child that ran for a
minute resets the back-off.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

CHILD_GRACE = 12.0
USAGE = "usage: python -m fedfabric.network.supervise [--grace SECONDS] -- CMD [ARGS...]"


class Supervisor:
    """Runs ``argv`` until told to stop, restarting it when it exits."""

    def __init__(self, argv: list[str], grace: float = CHILD_GRACE) -> None:
        self.argv, self.grace = argv, grace
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self._terminated: int | None = None    # pid already sent SIGTERM

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        self._terminate_child()

    def _terminate_child(self) -> None:
        child = self.child
        if child is not None and child.poll() is None and self._terminated != child.pid:
            self._terminated = child.pid
            child.send_signal(signal.SIGTERM)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.child = subprocess.Popen(self.argv)
        # a signal that came just before or during Popen saw no child to stop: stop it now
        if self.stopping:
            self._terminate_child()
        return self.child

    def run(self) -> int:
        backoff = 0.5
        while not self.stopping:
            started = time.monotonic()
            child = self._spawn()
            print(f"supervise: started {self.argv[0]} (pid {child.pid})", file=sys.stderr, flush=True)
            code = self._wait(child)
            if code is None:      # told to stop while the child still runs
                break
            if self.stopping:
                break
            ran = time.monotonic() - started
            backoff = 0.5 if ran > 60 else min(backoff * 2, 10.0)
            print(f"supervise: child exited with {code} after {ran:.1f}s; restarting in {backoff:.1f}s",
                  file=sys.stderr, flush=True)
            deadline = time.monotonic() + backoff
            while time.monotonic() < deadline and not self.stopping:
                time.sleep(0.1)
        self._finish()
        return 0

    def _wait(self, child: subprocess.Popen[bytes]) -> int | None:
        """The child's exit code, or None as soon as a stop was requested (a child that ignores
        SIGTERM must not keep the supervisor from enforcing its grace)."""
        while True:
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if self.stopping:
                    return None

    def _finish(self) -> None:
        """Wait ``grace`` s for the (already signalled) child, then kill it."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        self._terminate_child()
        try:
            child.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            print(f"supervise: child {child.pid} still running {self.grace:.0f}s after SIGTERM: killing it",
                  file=sys.stderr, flush=True)
            child.kill()
            child.wait()


def parse_args(argv: list[str]) -> tuple[list[str], float]:
    """(command, grace) from ``[--grace S] -- CMD ...``; ValueError on bad usage."""
    grace = CHILD_GRACE
    if "--" in argv:
        opts, argv = argv[:argv.index("--")], argv[argv.index("--") + 1:]
        if opts[:1] == ["--grace"] and len(opts) == 2:
            grace = float(opts[1])
        elif opts:
            raise ValueError(f"unknown options {opts}")
    if not argv or grace <= 0:
        raise ValueError("no command" if not argv else "grace must be positive")
    return argv, grace


def main(argv: list[str]) -> int:
    try:
        command, grace = parse_args(argv)
    except ValueError as exc:
        print(f"supervise: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    sup = Supervisor(command, grace)
    signal.signal(signal.SIGTERM, sup.on_signal)
    signal.signal(signal.SIGINT, sup.on_signal)
    return sup.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
