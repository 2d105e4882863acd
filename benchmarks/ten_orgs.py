"""Benchmark: round time of a consortium of many orgs on this machine, with the stake policy in force.

    .venv/bin/python benchmarks/ten_orgs.py [--orgs 10] [--rounds 4] [--privacy secure|clear]
                                            [--stakes equal|two] [--offset 21000] [--out FILE]

Brings up its own lean network (one Raft orderer; per org one peer, its CA and its chaincode server;
ports shifted by --offset in a range the default consortium leaves free, temporary run dir, always
taken down at the end), deploys the product chaincode, records the consortium (stake 100 each, or
--stakes two: every third org 200) and runs a breast-cancer logistic-regression job every org takes
part in: one ``fedfabric node`` process per org (one torch thread each), no coordinator. Every write
is endorsed by enough orgs to hold 2/3 of the stake (7 of 10 with equal stakes).

Per round, from the nodes' own records: its wall time (from the previous round's finalize, round 1
from the nodes' start) and phases -- train + mask + submit until the last update committed, fetch +
aggregate + evaluate + vote until the last ballot committed, finalize; rounds after the first give
the steady-state figure (p50). Also: network up, deploy, node start-up, invalidated transactions,
the compiled policy's size, and the load average before and after. Prints a table and writes
benchmarks/results/ten_orgs.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from fedfabric.network import fabricbin  # noqa: E402
from fedfabric_cc import policy  # noqa: E402
from tests.chaincode_live.helpers import Party, invalid_transactions  # noqa: E402
from tests.e2e.many_orgs import job_file, lifecycle_envelope, many_orgs_network, run_job  # noqa: E402
from benchmarks.output import write_results  # noqa: E402

console = Console(stderr=True, width=160)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orgs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--privacy", choices=("secure", "clear"), default="secure")
    ap.add_argument("--stakes", choices=("equal", "two"), default="equal")
    ap.add_argument("--offset", type=int, default=21000)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ten_orgs.json")
    args = ap.parse_args()
    stakes = [200 if args.stakes == "two" and i % 3 == 2 else 100 for i in range(args.orgs)]
    load0 = os.getloadavg()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fedfabric-many-orgs-") as tmp:
        with many_orgs_network(Path(tmp), args.orgs, args.offset, stakes,
                               report=lambda m: console.print(f"[dim]{m}[/]")) as c:
            first = c.admin.contract.network.qscc().chain_info()["height"]
            run = run_job(c, job_file(args.orgs, args.rounds, args.privacy, job_id="bench-many-orgs"),
                          timeout=args.timeout)
            last = c.admin.contract.network.qscc().chain_info()["height"] - 1
            invalid = invalid_transactions(Party("org1", "Org1MSP", c.admin, c.admin), first, last)
            pol = c.admin.get_policy()
            life_same = policy.decode_envelope(lifecycle_envelope(c)) == \
                policy.decode_envelope(bytes.fromhex(pol["envelope_hex"]))
            versions = [c.admin.get_version(run.job_id, r) for r in range(1, args.rounds + 1)]
            timings = dict(c.timings)
    load1 = os.getloadavg()
    steady = [r["round_s"] for r in run.rounds[1:]] or [run.rounds[0]["round_s"]]
    phases = {k: statistics.median(r["phases_s"][k] for r in run.rounds[1:] or run.rounds)
              for k in run.rounds[0]["phases_s"]}

    table = Table(title=f"{args.orgs} orgs, {args.privacy} job, {args.rounds} rounds "
                        f"(policy {pol['policy'][:40]}…, {pol['size']['policy_bytes']} B)")
    for col in ("round", "round s", "train+submit s", "fetch+aggregate+vote s", "finalize s", "updates", "ballots"):
        table.add_column(col, justify="right")
    for r in run.rounds:
        p = r["phases_s"]
        table.add_row(str(r["round"]), f"{r['round_s']:.2f}", f"{p['train+submit']:.2f}",
                      f"{p['fetch+aggregate+vote']:.2f}", f"{p['finalize']:.2f}", str(r["submitted"]),
                      str(r["voted"]))
    console.print(table)
    console.print(f"round p50 (rounds 2..): {statistics.median(steady):.2f} s; node start-up {run.startup_s:.1f} s; "
                  f"network up {timings['network_up_s']:.1f} s, deploy {timings['deploy_s']:.1f} s; "
                  f"invalid transactions {len(invalid)}; load {load0[0]:.2f} -> {load1[0]:.2f}")

    doc = {"fabric": fabricbin.read_pin()["FABRIC_RELEASE"],
           "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "load_avg_at_start": load0, "load_avg_at_end": load1,
           "topology": f"1 Raft orderer + {args.orgs} peers (one per org, each with its CA and chaincode server), "
                       "TLS, CCaaS Python chaincode, one fedfabric node process per org",
           "orgs": args.orgs, "stakes": stakes, "privacy": args.privacy, "rounds": args.rounds,
           "policy": {"string": pol["policy"], "size": pol["size"], "vectors": pol["vectors"],
                      "lifecycle_definition_is_the_compiled_policy": life_same},
           "timings_s": {**timings, "node_startup_s": run.startup_s, "job_s": run.seconds,
                         "total_s": time.monotonic() - t0},
           "round_s_p50": statistics.median(steady), "phases_s_p50": phases, "rounds_detail": run.rounds,
           "contributors_per_version": [len(v["contributors"]) for v in versions],
           "approvals_per_version": [sum(a["approve"] for a in v["approvals"]) for v in versions],
           "invalid_transactions": invalid, "job": {k: run.job[k] for k in ("status", "rounds_finalized",
                                                                            "rounds_failed")},
           "notes": ["round 1 includes the nodes' start-up (10 torch processes on the shared cores) and key "
                     "registration; rounds 2.. open already collecting",
                     "phases from the nodes' own records (same machine clock): last update committed, last "
                     "ballot committed, finalize committed"]}
    write_results(doc, args.out, console)
    return 0 if run.job["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
