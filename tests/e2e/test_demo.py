"""The README's main command, shortened to 2 rounds, on its own network: up, job, nodes, report, down."""
from __future__ import annotations

import io

import pytest
import yaml
from rich.console import Console

from fedfabric.node.demo import DEFAULT_JOB, run_demo
from fedfabric.network import nodes

from tests.conftest import TEST_PORT_OFFSET, default_raw, shift_ports
from tests.ports import OFFSETS, listen_ports

pytestmark = pytest.mark.live

# The demo brings up its own network while the session's live_network (TEST_PORT_OFFSET) may be up:
# its ports sit just above that network's (every port of consortium.yaml lies in 7050..9993).
DEMO_PORT_OFFSET = OFFSETS["demo"]


def test_demo_end_to_end_and_leaves_nothing_running(tmp_path):
    raw = shift_ports(default_raw(), DEMO_PORT_OFFSET)
    ours, theirs = listen_ports(raw), listen_ports(shift_ports(default_raw(), TEST_PORT_OFFSET))
    assert max(ours) < 65536 and not ours & theirs, "pick a FEDFABRIC_TEST_PORT_OFFSET that leaves room for the demo"
    cfg = tmp_path / "consortium.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    job = yaml.safe_load(DEFAULT_JOB.read_text())
    job["rounds"] = 2
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job))
    out = io.StringIO()
    res = run_demo(config_path=cfg, run_root=tmp_path / "run", job_file=job_file, out_dir=tmp_path / "report",
                   console=Console(file=out, width=120))
    text = out.getvalue()
    assert res.rounds_finalized == 2 and res.rounds_failed == 0
    assert res.federated["accuracy"] > 0.85 and res.centralized["accuracy"] > 0.85
    assert len(res.versions) == 3 and res.ledger_height > 10
    assert (tmp_path / "report" / "report.html").is_file() and (tmp_path / "report" / "accuracy.png").is_file()
    assert "federated test accuracy" in text and "Audit report" in text
    assert not (tmp_path / "run").exists()          # down removed the run dir
    assert _processes_mentioning(str(tmp_path / "run")) == []


def _processes_mentioning(run_dir: str) -> list[int]:
    """Pids whose command line or FEDFABRIC_RUN_DIR names ``run_dir`` (Fabric nodes, chaincode, org nodes)."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if run_dir in cmd or nodes._proc_environ(int(proc.name)).get("FEDFABRIC_RUN_DIR", "").startswith(run_dir):
            found.append(int(proc.name))
    return found
