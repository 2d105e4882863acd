"""``python -m tests.fuzz --seconds N``: fuzz every harness for N seconds each, print what happened.

Prints, per harness, the executions, the coverage libFuzzer reached and the findings (the input
files libFuzzer wrote and the exception it saw); exits 1 when anything was found. Inputs found
are kept under ``--workdir`` (default: a new temporary directory) for turning into regression tests.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from . import runner
from .target import HARNESSES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz",
                                 description="Fuzz each harness for N seconds; print executions and findings.")
    ap.add_argument("--seconds", type=int, default=60, help="time budget per harness (default 60)")
    ap.add_argument("--harness", choices=sorted(HARNESSES), action="append",
                    help="fuzz only this harness (repeatable; default all)")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (default 1)")
    ap.add_argument("--workdir", type=Path, help="where corpora and findings go (default: a temporary directory)")
    args = ap.parse_args(argv)
    if args.seconds < 1:
        ap.error("--seconds must be at least 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fabshim-fuzz-"))
    found = 0
    print(f"{'harness':<12} {'executions':>11} {'exec/s':>8} {'coverage':>9}  findings")
    for name in args.harness or sorted(HARNESSES):
        r = runner.run(name, workdir, seconds=args.seconds, seed=args.seed)
        rate = r.executions / max(1, args.seconds)
        print(f"{name:<12} {r.executions:>11} {rate:>8.0f} {r.coverage:>9}  {len(r.findings) or 'none'}")
        for path in r.findings:
            print(f"    {path}\n    {r.finding_summary() or '(see libFuzzer output)'}")
        if r.returncode != 0 and not r.findings:
            print(f"    libFuzzer exited with status {r.returncode}:\n{r.output[-2000:]}")
        found += len(r.findings) + (r.returncode != 0 and not r.findings)
    print(f"corpora and findings: {workdir}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
