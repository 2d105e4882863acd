"""Benchmark: one secure FL round on the real ledger, by update size.

    .venv/bin/python benchmarks/ledger_round.py [--sizes 10000,100000,1000000] [--repeat 3] [--offset 45000]

Brings up its own network (3 Raft orderers, 3 peers, ports shifted by --offset, temporary run dir;
always taken down at the end), deploys the product chaincode, initializes the consortium (3 orgs,
stake 100 each, quorum 2/3) and, per update size, times full secure rounds through the Gateway:

    open → start registration → register ×3 → close registration → 3 masked submissions (payload in
    the transient map) → aggregate (endorsed by a stake majority) → get_aggregate → 3 votes → finalize

Every write waits until all three peers committed it (as event-driven nodes would). Windows are long
enough that no step waits on a deadline (everyone takes part, so nothing waits for a window to close).
Each round's aggregate is checked bit for bit against plain FedAvg of the unmasked quantized updates.

Per round it also reports the bytes the round added to the ledger (serialized blocks from the
open_round block to the finalize block, via qscc GetBlockByNumber) and, separately, the private
payload bytes (3 updates + the aggregate) that went into the private collection instead.
Prints a table and writes benchmarks/results/ledger_round.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from fedfabric.network import fabricbin  # noqa: E402
from fedfabric.network.manager import Network  # noqa: E402
from tests.chaincode_live import helpers as H  # noqa: E402
from tests.conftest import test_config  # noqa: E402

console = Console(stderr=True, width=160)
STEPS = ("open", "start_registration", "register", "close_registration", "prepare_payloads", "submit",
         "aggregate", "get_aggregate", "vote", "finalize")


def p50(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def one_round(cons: H.Consortium, job_id: str, n: int, seed: int) -> dict:
    run = H.run_secure_round(cons, job_id, n, seed)
    expected = H.expected_fedavg_np(run.encoded, run.samples)
    if run.aggregate != expected:
        raise AssertionError(f"round {run.round} of {job_id}: aggregate differs from plain FedAvg")
    party = cons.first()
    first, last = run.first_block, run.last_block
    ledger = H.block_bytes(party, first, last)
    private = sum(len(p) for p in run.payloads.values()) + len(run.aggregate)
    return {"round": run.round, "seconds": run.timings["total"],
            "steps": {s: run.timings.get(s, 0.0) for s in STEPS},
            "blocks": [first, last], "block_count": last - first + 1, "ledger_bytes": ledger,
            "private_bytes": private, "payload_bytes_each": len(next(iter(run.payloads.values()))),
            "aggregate_ok": True}


def bench_size(cons: H.Consortium, n: int, repeat: int, window_s: int) -> dict:
    job_id = H.uid(f"bench-{n}")
    cons.synced(cons.first().admin.create_job(H.secure_job_spec(job_id, n, window_s=window_s, rounds=repeat)))
    runs, error = [], None
    for i in range(repeat):
        try:
            runs.append(one_round(cons, job_id, n, seed=i))
        except Exception as exc:  # noqa: BLE001 - report what broke (e.g. a message size limit) and go on
            error = f"{type(exc).__name__}: {exc}"
            console.print(f"[red]size {n}, round {i + 1} failed:[/red] {error}")
            traceback.print_exc()
            break
        r = runs[-1]
        console.print(f"  {n:>9,} params  round {r['round']}: {r['seconds']:.2f}s  "
                      f"blocks {r['blocks'][0]}..{r['blocks'][1]}  ledger {r['ledger_bytes']:,} B  "
                      f"private {r['private_bytes']:,} B")
    out = {"num_params": n, "job_id": job_id, "repeat": repeat, "runs": runs, "error": error}
    if runs:
        out.update({"round_s_p50": p50([r["seconds"] for r in runs]),
                    "steps_s_p50": {s: p50([r["steps"][s] for r in runs]) for s in STEPS},
                    "ledger_bytes_p50": p50([r["ledger_bytes"] for r in runs]),
                    "block_count_p50": p50([r["block_count"] for r in runs]),
                    "private_bytes": runs[0]["private_bytes"],
                    "payload_bytes_each": runs[0]["payload_bytes_each"]})
    return out


def table(results: list[dict]) -> Table:
    t = Table(title="secure round on the ledger (3 orgs, p50)")
    for col, just in (("params", "right"), ("payload", "right"), ("round p50", "right"), ("submit ×3", "right"),
                      ("aggregate", "right"), ("get_aggregate", "right"), ("blocks", "right"),
                      ("ledger bytes/round", "right"), ("private bytes/round", "right"), ("runs", "right"),
                      ("error", "left")):
        t.add_column(col, justify=just)
    for r in results:
        if not r["runs"]:
            t.add_row(f"{r['num_params']:,}", "", "", "", "", "", "", "", "", "0", r["error"] or "")
            continue
        s = r["steps_s_p50"]
        t.add_row(f"{r['num_params']:,}", f"{r['payload_bytes_each'] / 1e6:.2f} MB", f"{r['round_s_p50']:.2f} s",
                  f"{s['submit']:.2f} s", f"{s['aggregate']:.2f} s", f"{s['get_aggregate']:.2f} s",
                  f"{r['block_count_p50']:.0f}", f"{r['ledger_bytes_p50']:,.0f}", f"{r['private_bytes']:,}",
                  f"{len(r['runs'])}/{r['repeat']}", r["error"] or "")
    return t


def _terminate(signum, frame):  # noqa: ANN001
    raise SystemExit(f"signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="update sizes (parameters), comma-separated")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per size")
    ap.add_argument("--offset", type=int, default=45000, help="port offset of the benchmark's own network")
    ap.add_argument("--window", type=int, default=300, help="registration/submission/approval windows (s)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ledger_round.json"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    signal.signal(signal.SIGTERM, _terminate)

    fabricbin.locate().check()
    results: list[dict] = []
    setup: dict = {}
    with tempfile.TemporaryDirectory(prefix="fedfabric-bench-") as tmp:
        net = Network(test_config(args.offset), Path(tmp) / "run", report=lambda m: console.print(f"[dim]• {m}[/dim]"))
        try:
            t0 = time.monotonic()
            net.up()
            setup["up_s"] = time.monotonic() - t0
            t0 = time.monotonic()
            H.deploy_product(net)
            setup["deploy_s"] = time.monotonic() - t0
            with H.Consortium(net.layout) as cons:
                t0 = time.monotonic()
                cons.wait_ready()
                cons.init()
                setup["init_s"] = time.monotonic() - t0
                t0 = time.monotonic()
                cons.wait_endorsers()  # gossip fully meshed (every Gateway sees every org's endorser)
                setup["gossip_mesh_s"] = time.monotonic() - t0
                warm = H.uid("bench-warmup")
                cons.synced(cons.first().admin.create_job(H.secure_job_spec(warm, 1000, window_s=args.window, rounds=1)))
                t0 = time.monotonic()
                H.run_secure_round(cons, warm, 1000)
                setup["warmup_round_1000_s"] = time.monotonic() - t0
                for n in sizes:
                    console.print(f"[bold]{n:,} parameters[/bold] ({4 * n / 1e6:.2f} MB per update)")
                    results.append(bench_size(cons, n, args.repeat, args.window))
        finally:
            t0 = time.monotonic()
            net.down()
            setup["down_s"] = time.monotonic() - t0

    doc = {"fabric": fabricbin.read_pin()["FABRIC_RELEASE"], "host": {"cpus": os.cpu_count(),
                                                                      "python": platform.python_version()},
           "topology": "3 Raft orderers + 3 peers (one per org), TLS, CCaaS Python chaincode per org",
           "endorsement": "2 of 3 orgs (stake 100 each, quorum 2/3)", "privacy": "secure (pairwise masks), fedavg",
           "batch_timeout_ms": net.config.batch.timeout_ms, "window_s": args.window,
           "notes": ["every write waits until all 3 peers committed it; measured after every Gateway sees "
                     "every org's endorser (gossip fully meshed)",
                     "ledger_bytes: serialized blocks open..finalize (qscc GetBlockByNumber); the update payloads "
                     "and the aggregate live in the private collection, only their hashes are in blocks",
                     "private_bytes: 3 update payloads + the aggregate, stored in each member peer's private "
                     "data store until purged (finalize purges the updates; blockToLive 20 the rest)"],
           "setup": setup, "results": results}
    Console(width=160).print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, sort_keys=True))
    console.print(f"written {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if all(r["error"] is None and len(r["runs"]) == r["repeat"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
