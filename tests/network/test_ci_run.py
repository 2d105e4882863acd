""".ci/run's safety net: a test run that leaves node processes behind is reported and fails; only
this run's processes (its tag, run dirs in the checkout or pytest's temp dirs) are touched."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from fedfabric.network import nodes, paths

TEST_COMMAND = "./setup.sh && .venv/bin/python -m pytest"


def _checkout(tmp_path: Path, command: str) -> Path:
    """A copy of .ci/run in a fake checkout, with the test command replaced by ``command``."""
    text = (paths.REPO_ROOT / ".ci" / "run").read_text()
    assert text.rstrip().endswith(TEST_COMMAND)   # CI runs the README's test command
    ci = tmp_path / "checkout" / ".ci"
    ci.mkdir(parents=True)
    (ci / "run").write_text(text.replace(TEST_COMMAND, command))
    return tmp_path / "checkout"


def _run(checkout: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FEDFABRIC_CI_TAG"}
    return subprocess.run(["bash", str(checkout / ".ci" / "run")], capture_output=True, text=True, env=env,
                          timeout=60)


def test_clean_run_keeps_the_test_status(tmp_path) -> None:
    assert _run(_checkout(tmp_path, "true")).returncode == 0
    out = _run(_checkout(tmp_path / "b", "exit 3"))
    assert out.returncode == 3 and "LEFTOVER" not in out.stderr


def test_leftovers_are_printed_stopped_and_fail_the_run(tmp_path) -> None:
    checkout = _checkout(tmp_path, (
        'FEDFABRIC_RUN_DIR="$here/run" FEDFABRIC_NODE=peer0.org1 setsid sleep 300 >/dev/null 2>&1 &\n'
        'FEDFABRIC_RUN_DIR="$here/run" FEDFABRIC_NODE=cc-x.org1 setsid sh -c "trap \'\' TERM; sleep 300" '
        '>/dev/null 2>&1 &\n'
        'FEDFABRIC_RUN_DIR=/elsewhere/run FEDFABRIC_NODE=orderer1 setsid sleep 301 >/dev/null 2>&1 &\n'
        'echo "$!" > elsewhere.pid; sleep 0.5; true'))
    # the same kind of process, but not started by this CI run (no tag): never touched
    foreign = subprocess.Popen(["sleep", "302"], start_new_session=True,
                               env={**{k: v for k, v in os.environ.items() if k != "FEDFABRIC_CI_TAG"},
                                    "FEDFABRIC_RUN_DIR": str(checkout / "run"), "FEDFABRIC_NODE": "orderer2"})
    elsewhere = None
    try:
        t0 = time.monotonic()
        out = _run(checkout)
        assert out.returncode == 1, out.stderr
        assert "ci: the test run left 3 process(es) running:" in out.stderr
        lines = [l.split(" ", 4)[-1] for l in out.stderr.splitlines() if l.startswith("ci: LEFTOVER process ")]
        assert sorted(lines) == ["(node cc-x.org1): sh -c trap '' TERM; sleep 300", "(node cc-x.org1): sleep 300",
                                 "(node peer0.org1): sleep 300"]
        assert "ci: FAILED: leftover processes (stopped now)" in out.stderr
        assert time.monotonic() - t0 < 30
        assert foreign.poll() is None                      # left alone
        elsewhere = int((checkout / "elsewhere.pid").read_text())
        assert nodes._alive(elsewhere)                      # outside this checkout and pytest's temp dirs
        leftover_pids = [int(l.split()[3]) for l in out.stderr.splitlines() if "LEFTOVER" in l]
        assert not any(nodes._alive(p) for p in leftover_pids)
    finally:
        foreign.kill()
        if elsewhere:
            os.kill(elsewhere, 9)
