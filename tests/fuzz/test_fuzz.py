"""A short, seeded run of each fuzz harness under libFuzzer (a few seconds each): no finding."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("atheris")

from . import runner  # noqa: E402

# about a second of fuzzing each on one core (the contract harness also builds its world, ~2 s instrumented)
RUNS = {"handler": 3000, "router": 20000, "spec": 3000, "update_meta": 5000, "ballot": 5000, "rule": 20000,
        "contract": 1500}


@pytest.mark.parametrize("harness", sorted(RUNS))
def test_short_fuzz_run_finds_nothing(harness: str, tmp_path: Path) -> None:
    r = runner.run(harness, tmp_path, runs=RUNS[harness], seed=1)
    assert r.ok, f"{r.finding_summary()}\n{r.findings}\n{r.output[-3000:]}"
    assert r.executions >= RUNS[harness]
    assert r.coverage > 50  # the code under test was instrumented and reached
