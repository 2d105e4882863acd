"""Runs one harness in a subprocess under libFuzzer and reads back what it did.

A run gets the harness's seed inputs as its corpus, a fixed random seed, and either a number of
executions (``runs``) or a time budget (``seconds``). libFuzzer stops at the first finding and
writes the input that caused it under the run's artifact directory.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import target

ROOT = Path(__file__).resolve().parents[2]
MAX_LEN = 4096


@dataclass
class Result:
    harness: str
    returncode: int
    executions: int
    coverage: int
    findings: list[Path] = field(default_factory=list)
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.findings

    def finding_summary(self) -> str:
        """The exception atheris reported for the finding ("" if none)."""
        lines = self.output.splitlines()
        for i, line in enumerate(lines[:-1]):
            if "Uncaught Python exception" in line:
                return lines[i + 1]
        return ""


def _seed_corpus(harness: str, corpus: Path) -> None:
    module = target.load(harness)
    corpus.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(module.seeds()):
        (corpus / f"seed-{i:03d}").write_bytes(data)


def _stat(output: str, name: str) -> int:
    m = re.findall(rf"stat::{name}:\s+(\d+)", output)
    return int(m[-1]) if m else 0


def run(harness: str, workdir: Path, *, seconds: Optional[int] = None, runs: Optional[int] = None,
        seed: int = 1) -> Result:
    """Fuzz ``harness`` for ``seconds`` or ``runs`` executions; files go under ``workdir/harness``."""
    if (seconds is None) == (runs is None):
        raise ValueError("give seconds or runs")
    base = workdir / harness
    corpus, artifacts = base / "corpus", base / "findings"
    _seed_corpus(harness, corpus)
    artifacts.mkdir(parents=True, exist_ok=True)
    budget = f"-max_total_time={seconds}" if seconds is not None else f"-runs={runs}"
    cmd = [sys.executable, "-m", "tests.fuzz.target", harness, str(corpus), budget, f"-seed={seed}",
           f"-max_len={MAX_LEN}", "-timeout=20", "-print_final_stats=1", f"-artifact_prefix={artifacts}/"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (ROOT, ROOT / "app", ROOT / "chaincode"))}
    limit = (seconds or 0) + 120
    proc = subprocess.run(cmd, cwd=base, env=env, capture_output=True, text=True, timeout=limit)
    output = proc.stdout + proc.stderr
    found = sorted(p for p in artifacts.iterdir() if p.is_file())
    return Result(harness, proc.returncode, _stat(output, "number_of_executed_units"), _coverage(output),
                  found, output)


def _coverage(output: str) -> int:
    m = re.findall(r"cov: (\d+)", output)
    return int(m[-1]) if m else 0
