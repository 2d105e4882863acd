"""A tiny process supervisor for chaincode servers: restart the child when it dies.

    python -m fedfabric.network.supervise -- CMD ARGS...

SIGTERM/SIGINT to the supervisor stop the child (SIGTERM, then SIGKILL after 10 s) and exit.
Restarts back off from 0.5 s up to 10 s; a child that ran for a minute resets the back-off.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

_stopping = False


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print("usage: python -m fedfabric.network.supervise -- CMD [ARGS...]", file=sys.stderr)
        return 2
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        global _stopping
        _stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = 0.5
    while not _stopping:
        started = time.monotonic()
        child = subprocess.Popen(argv)
        print(f"supervise: started {argv[0]} (pid {child.pid})", file=sys.stderr, flush=True)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            code = child.wait()
        if _stopping:
            break
        ran = time.monotonic() - started
        backoff = 0.5 if ran > 60 else min(backoff * 2, 10.0)
        print(f"supervise: child exited with {code} after {ran:.1f}s; restarting in {backoff:.1f}s",
              file=sys.stderr, flush=True)
        deadline = time.monotonic() + backoff
        while time.monotonic() < deadline and not _stopping:
            time.sleep(0.1)
    if child is not None and child.poll() is None:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
