"""The benchmark's percentile: nearest rank, ceil(q/100 * n)-th smallest value, clamped."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "gateway_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gateway_throughput_under_test", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _reference(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s), max(1, math.ceil(q * len(s) / 100))) - 1]


@pytest.mark.parametrize("n, q, expected", [
    (10, 50, 5), (10, 90, 9), (10, 99, 10), (10, 100, 10), (10, 0, 1), (10, 10, 1), (10, 11, 2),
    (4, 50, 2), (4, 25, 1), (4, 75, 3), (3, 50, 2), (1, 99, 1), (100, 99, 99), (100, 7, 7), (1000, 99.9, 999),
    (200, 50, 100), (200, 99, 198),
])
def test_nearest_rank(bench, n: int, q: float, expected: int) -> None:
    values = [float(i) for i in range(n, 0, -1)]   # 1..n, unsorted
    assert bench.pct(values, q) == expected


def test_matches_definition_for_every_size(bench) -> None:
    for n in range(1, 60):
        values = [float((i * 37) % 101) for i in range(n)]
        for q in (1, 5, 10, 25, 50, 75, 90, 95, 99, 100):
            assert bench.pct(values, q) == _reference(values, q), (n, q)


def test_empty_refused(bench) -> None:
    with pytest.raises(ValueError):
        bench.pct([], 50)


def test_latency_summary_format_unchanged(bench) -> None:
    out = bench.lat_summary([0.001 * i for i in range(1, 11)])
    assert list(out) == ["n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms"]
    assert out["n"] == 10 and out["p50_ms"] == pytest.approx(5.0) and out["p90_ms"] == pytest.approx(9.0)
    assert out["p99_ms"] == pytest.approx(10.0) and out["max_ms"] == pytest.approx(10.0)
    json.dumps(out)
