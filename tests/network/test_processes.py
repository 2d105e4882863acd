"""Stopping nodes: the whole process group, waited for; the chaincode supervisor's child never outlives
a stop; a stop signal that reaches the supervisor before its child exists still stops the child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fedfabric.network import nodes, paths, supervise

IGNORE_TERM = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)")
ENV = {**os.environ, "PYTHONPATH": f"{paths.REPO_ROOT / 'app'}"}


def _ignores_term(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(l.split()[1] for l in status.splitlines() if l.startswith("SigIgn:")), 16)
    return bool(mask & (1 << (signal.SIGTERM - 1)))


def _wait_for(pred, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _start(argv: list[str], log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.DEVNULL
    return subprocess.Popen(argv, env=ENV, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _supervised(grace: float, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A supervisor (own session, like a node) whose child ignores SIGTERM; (supervisor, child pid)."""
    sup = _start([sys.executable, "-m", "fedfabric.network.supervise", "--grace", str(grace), "--",
                  sys.executable, "-c", IGNORE_TERM], log)
    _wait_for(lambda: len(nodes.group_members(sup.pid)) == 2)
    child = next(p for p in nodes.group_members(sup.pid) if p != sup.pid)
    _wait_for(lambda: _ignores_term(child))
    return sup, child


def test_stop_gentle_process_returns_at_once() -> None:
    proc = _start(["sleep", "120"])
    t0 = time.monotonic()
    nodes.stop_pid(proc.pid, grace=10)
    assert time.monotonic() - t0 < 2
    assert not Path(f"/proc/{proc.pid}").exists()   # reaped by stop_pid's wait: no zombie left


def test_stop_kills_the_whole_group_after_the_grace_and_waits() -> None:
    proc = _start(["sh", "-c", "trap '' TERM; sleep 120 & sleep 120 & wait"])
    _wait_for(lambda: len(nodes.group_members(proc.pid)) == 3 and _ignores_term(proc.pid))
    members = nodes.group_members(proc.pid)
    t0 = time.monotonic()
    nodes.stop_pid(proc.pid, grace=1)
    took = time.monotonic() - t0
    assert 1 <= took < 1 + nodes.KILL_WAIT
    assert nodes.group_members(proc.pid) == []
    assert not any(Path(f"/proc/{p}").exists() and nodes._alive(p) for p in members)


def test_stop_reaches_the_group_after_its_leader_died() -> None:
    """An orphaned grandchild (its supervisor already gone) is still stopped through the group."""
    proc = _start(["sh", "-c", "sleep 120 & exit 0"])
    proc.wait()
    _wait_for(lambda: len(nodes.group_members(proc.pid)) == 1)
    nodes.stop_pid(proc.pid, grace=5)
    assert nodes.group_members(proc.pid) == []


def test_stop_pids_stops_several_nodes_in_one_grace() -> None:
    procs = [_start(["sh", "-c", "trap '' TERM; sleep 120"]) for _ in range(3)]
    _wait_for(lambda: all(_ignores_term(p.pid) for p in procs))
    t0 = time.monotonic()
    nodes.stop_pids([p.pid for p in procs], grace=1)
    assert time.monotonic() - t0 < 1 + nodes.KILL_WAIT   # not 3 graces one after the other
    assert all(p.poll() is not None for p in procs)


def test_grace_ordering_lets_the_supervisor_stop_its_child_first() -> None:
    assert nodes.STOP_GRACE >= supervise.CHILD_GRACE + 2
    assert supervise.CHILD_GRACE > 10   # the chaincode server's own drain (fabshim: 10 s)


def test_supervisor_kills_a_slow_child_within_the_stop_grace(tmp_path) -> None:
    sup, child = _supervised(grace=1, log=tmp_path / "sup.log")
    t0 = time.monotonic()
    nodes.stop_pid(sup.pid, grace=6)
    assert time.monotonic() - t0 < 4          # the supervisor did it (after its 1 s), not the group SIGKILL
    assert not nodes._alive(child) and nodes.group_members(sup.pid) == []
    assert "still running 1s after SIGTERM: killing it" in (tmp_path / "sup.log").read_text()
    assert sup.poll() is not None


def test_group_kill_stops_the_child_even_if_the_supervisor_waits_longer(tmp_path) -> None:
    sup, child = _supervised(grace=60, log=tmp_path / "sup.log")
    nodes.stop_pid(sup.pid, grace=1)
    assert not nodes._alive(child) and nodes.group_members(sup.pid) == []


def test_signal_before_the_child_exists_still_stops_it(tmp_path) -> None:
    """SIGTERM delivered while the supervisor is about to Popen: the new child is stopped, the
    supervisor exits (before the fix it waited on the child forever)."""
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import os, signal, subprocess, sys
        from fedfabric.network import supervise
        real = subprocess.Popen
        def popen(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)   # handled before the child exists
            return real(*args, **kwargs)
        subprocess.Popen = popen
        sys.exit(supervise.main(["--grace", "30", "--", sys.executable, "-c", "import time; time.sleep(120)"]))
    """))
    proc = _start([sys.executable, str(driver)], tmp_path / "driver.log")
    try:
        assert proc.wait(timeout=20) == 0
    finally:
        nodes.stop_pid(proc.pid, grace=1)
    log = (tmp_path / "driver.log").read_text()
    child = int(log.split("(pid ", 1)[1].split(")", 1)[0])
    assert not nodes._alive(child)
    assert nodes.group_members(proc.pid) == []


@pytest.mark.parametrize("argv,message", [
    ([], "no command"),
    (["--grace", "0", "--", "true"], "grace must be positive"),
    (["--bogus", "--", "true"], "unknown options ['--bogus']"),
])
def test_supervise_usage_errors(argv, message, capsys) -> None:
    assert supervise.main(argv) == 2
    assert message in capsys.readouterr().err


def test_tagged_processes_lists_a_run_dirs_nodes_and_their_children(tmp_path) -> None:
    run = tmp_path / "run"
    env = {**ENV, "FEDFABRIC_RUN_DIR": str(run), "FEDFABRIC_NODE": "cc-x.org1"}
    proc = subprocess.Popen(["sh", "-c", "sleep 120 & wait"], env=env, start_new_session=True)
    other = subprocess.Popen(["sleep", "120"], env={**ENV, "FEDFABRIC_RUN_DIR": str(run)},
                             start_new_session=True)   # not a node: never listed
    try:
        _wait_for(lambda: len(nodes.tagged_processes(run)) == 2)
        found = nodes.tagged_processes(run)
        assert proc.pid in found and set(found.values()) == {"cc-x.org1"} and other.pid not in found
    finally:
        nodes.stop_pids([proc.pid, other.pid], grace=1)
    assert nodes.tagged_processes(run) == {}
