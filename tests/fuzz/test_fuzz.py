"""A short, seeded run of each fuzz harness under libFuzzer (a few seconds in all): no finding."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("atheris")

from . import runner  # noqa: E402

RUNS = {"handler": 3000, "router": 20000}  # about a second of fuzzing each on one core


@pytest.mark.parametrize("harness", sorted(RUNS))
def test_short_fuzz_run_finds_nothing(harness: str, tmp_path: Path) -> None:
    r = runner.run(harness, tmp_path, runs=RUNS[harness], seed=1)
    assert r.ok, f"{r.finding_summary()}\n{r.findings}\n{r.output[-3000:]}"
    assert r.executions >= RUNS[harness]
    assert r.coverage > 50  # the shim's code was instrumented and reached
