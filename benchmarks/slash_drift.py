"""Benchmark: slashing in a consortium at the endorsement policy's size limit, round after round.

    .venv/bin/python benchmarks/slash_drift.py [--rounds 200] [--offenders 2] [--slash 10] [--seed 1] [--out FILE]

Every slash changes a stake, and a stake no other member holds is a new stake class: a 50-org
consortium with four stake values has no compact exact policy for most single slashes. The contract
(``fedfabric_cc.incentives.settle``) then keeps the slash as stake owed (``slash_owed``), takes it by
whole stake levels when enough is owed, and takes it whole when the stake vector allows. This script
plays that settlement on the contract itself (the in-memory ledger of the unit tests, real compiler)
for 50-org consortia starting from equal stakes and from 2, 3 and 4 stake values: each round the
same seeded random offenders are slashed. Per start it reports the stake due, the stake taken, what
is still owed, the settlements whose exact cut had no compact policy (before debts existed, those
slashes were dropped), level drops, the stake classes at the end, the largest envelope and the
settlement's compile time. No network. Prints a table and writes benchmarks/results/slash_drift.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from fabshim.contract import Context  # noqa: E402
from fedfabric_cc import incentives  # noqa: E402
from fedfabric_protocol.spec import Incentives  # noqa: E402
from tests.chaincode import identities as ids  # noqa: E402
from tests.chaincode.harness import Ledger, init  # noqa: E402
from benchmarks.output import write_results  # noqa: E402

console = Console(width=200)
ORGS = [f"Org{i + 1}MSP" for i in range(50)]
STARTS = {"equal (100)": (100,), "2 values (100/300)": (100, 300), "3 values (100/200/300)": (100, 200, 300),
          "4 values (100/200/300/400)": (100, 200, 300, 400)}


def play(values: tuple[int, ...], rounds: int, offenders: int, slash: int, seed: int, progress, task) -> dict:
    """Settle ``rounds`` rounds on a fresh 50-org ledger whose stakes cycle through ``values``."""
    led = Ledger()
    init(led, stakes=tuple(values[i % len(values)] for i in range(50)), balances=(0,) * 50, orgs=ORGS)
    rnd = random.Random(seed)
    inc = Incentives(slash_absent=slash)
    due = taken = deferred = drops = 0
    compile_s, envelopes = [], []
    for r in range(1, rounds + 1):
        absent = sorted(rnd.sample(ORGS, offenders))
        orgs = {o["msp_id"]: o for o in led.call(ids.auditor("Org1MSP"), "list_orgs")}
        due += sum(min(slash, orgs[m]["stake"] - orgs[m]["slash_owed"]) for m in absent)
        t0 = time.perf_counter()
        with led.stub.transaction(ids.admin("Org1MSP"), seconds=led.t):
            out = incentives.settle(Context(led.stub), inc, "job1", r, orgs, {}, absent)
        compile_s.append(time.perf_counter() - t0)
        taken += sum(out["slashed"].values())
        deferred += out["slash_deferred"] is not None
        drops += out["slash_deferred"] is not None and bool(out["slashed"])
        if out["envelope"]:
            envelopes.append(len(out["envelope"]))
        progress.advance(task)
    end = led.call(ids.auditor("Org1MSP"), "list_orgs")
    pol = led.call(ids.auditor("Org1MSP"), "get_policy")
    return {"start": list(values), "rounds": rounds, "due": due, "taken": taken,
            "owed": sum(o["slash_owed"] for o in end), "most_owed": max(o["slash_owed"] for o in end),
            "exact_refused": deferred, "level_drops": drops,
            "classes_end": len(pol["classes"]), "largest_envelope": max(envelopes, default=0),
            "zero_stake_orgs": sum(1 for o in end if o["stake"] == 0),
            "settle_s_median": statistics.median(compile_s), "settle_s_max": max(compile_s)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--offenders", type=int, default=2, help="orgs slashed per round")
    ap.add_argument("--slash", type=int, default=10, help="stake slashed per offence")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "slash_drift.json")
    args = ap.parse_args()
    rows = {}
    with Progress(console=console, transient=True) as progress:
        for label, values in STARTS.items():
            task = progress.add_task(label, total=args.rounds)
            rows[label] = play(values, args.rounds, args.offenders, args.slash, args.seed, progress, task)
    table = Table(title=f"50 orgs, {args.rounds} rounds, {args.offenders} offenders a round slashed {args.slash} "
                        f"each (seed {args.seed})")
    for col in ("start", "due", "taken", "still owed", "most one org owes", "exact cut refused", "level drops", "classes at end",
                "largest envelope B", "orgs at 0", "settle s p50", "settle s max"):
        table.add_column(col, justify="left" if col == "start" else "right")
    for label, r in rows.items():
        table.add_row(label, str(r["due"]), str(r["taken"]), str(r["owed"]), str(r["most_owed"]),
                      str(r["exact_refused"]),
                      str(r["level_drops"]), str(r["classes_end"]), f"{r['largest_envelope']:,}",
                      str(r["zero_stake_orgs"]), f"{r['settle_s_median']:.2f}", f"{r['settle_s_max']:.2f}")
    console.print(table)
    doc = {"host": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
           "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "args": {k: v for k, v in vars(args).items()
                                                                       if k != "out"},
           "notes": ["due: stake the penalties asked for (at most the stake not yet owed); taken: stake slashed; "
                     "owed: slash_owed summed at the end (due = taken + owed)",
                     "exact_refused: settlements whose whole cut had no compact exact policy; level_drops: of "
                     "those, settlements where an offender dropped to a lower stake level held by others",
                     "settle_s: one settle() call, both compiles included"],
           "results": rows}
    write_results(doc, args.out, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
