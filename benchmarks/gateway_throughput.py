"""Benchmark: transactions through the Fabric Gateway on a real network on this machine.

    .venv/bin/python benchmarks/gateway_throughput.py [--offset 3000] [--sequential 100]
        [--threads 4,10,32] [--per-thread 30] [--evaluate 1000] [--eval-threads 8] [--policy quorum|any]

Brings up its own network (consortium.yaml with every port moved by --offset, in a temporary run
directory; taken down at the end), deploys the demo contract (tests/chaincode_demo/demo_cc.py on
the fabshim Python shim) and, as org1's User1 through org1's peer Gateway, measures:

  * sequential submits of a small write (put of a 16-byte value), one in flight: throughput, and the
    commit latency of each (endorse + order + commit, i.e. until the Gateway reports VALID);
  * concurrent submits from each of --threads client thread counts sharing one Gateway connection
    (distinct keys, so no MVCC conflicts): throughput, latency under load, transactions per block;
  * evaluates (a read of one key), sequential and from --eval-threads threads.

The endorsement policy is the product's (stake quorum from consortium.yaml: 2 of the 3 equal-stake
orgs) unless --policy any. The batch settings (BatchTimeout, MaxMessageCount) that bound the
latency are recorded with the numbers. Prints a table; writes benchmarks/results/gateway_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

from fedfabric.ledger import CommitError, GatewayError  # noqa: E402
from fedfabric.network import fabricbin  # noqa: E402
from fedfabric.network.deploy import ChaincodeDeployment  # noqa: E402
from fedfabric.network.manager import SiteManager  # noqa: E402
from tests.conftest import test_config  # noqa: E402
from tests.ledger.live_helpers import connect_org, wait_until_endorsable  # noqa: E402

CC = "demo"
VALUE = "x" * 16


def pct(values: list[float], q: float) -> float:
    """The q-th percentile of ``values`` by nearest rank: the ceil(q/100 * n)-th smallest (1-based).

    The rank is computed exactly (``Fraction``), so float noise such as 0.07 * 100 = 7.000000000000001
    cannot push it one place up; it is clamped to 1..n (q = 0 gives the minimum).
    """
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    rank = math.ceil(Fraction(str(q)) / 100 * len(s))
    return s[min(len(s), max(1, rank)) - 1]


def lat_summary(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p90_ms": pct(ms, 90), "p99_ms": pct(ms, 99),
            "mean_ms": statistics.fmean(ms), "max_ms": max(ms)}


def timed_submit(contract, key: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    res = contract.submit("put", args=[key, VALUE])
    return time.perf_counter() - t0, res.block_number


def run_sequential(contract, n: int, tag: str) -> dict:
    lats, blocks = [], []
    t0 = time.perf_counter()
    for i in range(n):
        lat, block = timed_submit(contract, f"seq-{tag}-{i}")
        lats.append(lat)
        blocks.append(block)
    elapsed = time.perf_counter() - t0
    return {"transactions": n, "elapsed_s": elapsed, "tx_per_s": n / elapsed, "latency": lat_summary(lats),
            "blocks": len(set(blocks))}


def run_concurrent(contract, threads: int, per_thread: int, tag: str) -> dict:
    lats: list[float] = []
    blocks: list[int] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            try:
                lat, block = timed_submit(contract, f"conc-{tag}-{t}-{i}")
            except (CommitError, GatewayError) as err:
                with lock:
                    name = getattr(err, "code", None)
                    key = f"{type(err).__name__}:{getattr(name, 'name', name)}"
                    errors[key] = errors.get(key, 0) + 1
                continue
            with lock:
                lats.append(lat)
                blocks.append(block)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    elapsed = time.perf_counter() - t0
    ok = len(lats)
    per_block: dict[int, int] = {}
    for b in blocks:
        per_block[b] = per_block.get(b, 0) + 1
    return {"threads": threads, "transactions": threads * per_thread, "committed_valid": ok, "errors": errors,
            "elapsed_s": elapsed, "tx_per_s": ok / elapsed, "latency": lat_summary(lats) if lats else None,
            "blocks": len(per_block),
            "tx_per_block_mean": statistics.fmean(per_block.values()) if per_block else None,
            "tx_per_block_max": max(per_block.values()) if per_block else None}


def run_evaluate(contract, n: int, threads: int, key: str) -> dict:
    def one(_: int) -> float:
        t0 = time.perf_counter()
        if contract.evaluate("get", args=[key]) != VALUE.encode():
            raise AssertionError("evaluate returned the wrong value")
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    if threads <= 1:
        lats = [one(i) for i in range(n)]
    else:
        with ThreadPoolExecutor(threads) as pool:
            lats = list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - t0
    return {"threads": threads, "evaluations": n, "elapsed_s": elapsed, "eval_per_s": n / elapsed,
            "latency": lat_summary(lats)}


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    b = result["batch"]
    table = Table(title=f"Gateway throughput: Fabric {result['fabric']}, BatchTimeout {b['timeout_ms']} ms, "
                        f"MaxMessageCount {b['max_message_count']}, {result['host']['cpus']} CPUs",
                  caption=f"endorsement policy {result['endorsement_policy']}")
    for col in ("workload", "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "note"):
        table.add_column(col, justify="left" if col in ("workload", "note") else "right")

    def row(name: str, r: dict, rate_key: str, ops: int, note: str = "") -> None:
        lat = r["latency"] or {}
        table.add_row(name, str(ops), f"{r[rate_key]:.1f}",
                      *(f"{lat[k]:.1f}" if k in lat else "-" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                      note)

    s = result["submit_sequential"]
    row("submit, sequential (commit latency)", s, "tx_per_s", s["transactions"], f"{s['blocks']} blocks")
    for c in result["submit_concurrent"]:
        note = f"{c['tx_per_block_mean']:.1f} tx/block (max {c['tx_per_block_max']})" if c["blocks"] else ""
        if c["errors"]:
            note += f"; errors {c['errors']}"
        row(f"submit, {c['threads']} threads", c, "tx_per_s", c["transactions"], note)
    for r in result["evaluate"]:
        row(f"evaluate, {'sequential' if r['threads'] <= 1 else str(r['threads']) + ' threads'}", r,
            "eval_per_s", r["evaluations"])
    Console(width=max(Console().width, 120)).print(table)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--offset", type=int, default=3000, help="port shift of the benchmark network")
    ap.add_argument("--sequential", type=int, default=100, help="sequential submits")
    ap.add_argument("--threads", default="4,10,32",
                    help="comma-separated client thread counts, one concurrent submit phase each")
    ap.add_argument("--per-thread", type=int, default=30, help="submits per thread")
    ap.add_argument("--evaluate", type=int, default=1000, help="evaluations per evaluate phase")
    ap.add_argument("--eval-threads", type=int, default=8, help="client threads for the concurrent evaluates")
    ap.add_argument("--policy", choices=("quorum", "any"), default="quorum",
                    help="chaincode endorsement policy: the stake quorum (default) or any one org")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gateway_throughput.json")
    args = ap.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]

    fabricbin.locate().check()
    config = test_config(args.offset)
    policy = None
    if args.policy == "any":
        policy = "OR(" + ",".join(f"'{o.msp_id}.peer'" for o in config.orgs) + ")"
    dep = ChaincodeDeployment(name=CC, version="1", policy=policy,
                              command=(sys.executable, "-m", "tests.chaincode_demo.demo_cc"))
    tag = f"{os.getpid()}-{int(time.time())}"
    with tempfile.TemporaryDirectory(prefix="fedfabric-bench-") as tmp:
        net = SiteManager(config, Path(tmp) / "run", report=lambda m: print(f"  {m}", file=sys.stderr))
        try:
            t0 = time.monotonic()
            net.up()
            net.deploy(dep)
            setup_s = time.monotonic() - t0
            with connect_org(net, "org1") as gw:
                contract = gw.get_network(config.channel).get_contract(CC)
                wait_until_endorsable(contract, "put", ["warmup", VALUE])
                for i in range(10):   # warm the Gateway's connections to the other orgs' peers
                    contract.submit("put", args=[f"warmup-{i}", VALUE])
                print("sequential submits…", file=sys.stderr)
                sequential = run_sequential(contract, args.sequential, tag)
                concurrent = []
                for threads in thread_counts:
                    print(f"concurrent submits ({threads} threads)…", file=sys.stderr)
                    concurrent.append(run_concurrent(contract, threads, args.per_thread, f"{tag}-{threads}"))
                print("evaluates…", file=sys.stderr)
                evaluate = [run_evaluate(contract, args.evaluate, 1, "warmup"),
                            run_evaluate(contract, args.evaluate, args.eval_threads, "warmup")]
                height = gw.get_network(config.channel).qscc().chain_info()["height"]
        finally:
            net.down()

    batch = config.batch
    result = {
        "fabric": fabricbin.read_pin()["FABRIC_RELEASE"],
        "network": "3 Raft orderers + 3 peers (one per org), TLS everywhere, native processes on 127.0.0.1",
        "client": "org1 User1 via org1's peer Gateway (fedfabric.ledger, one gRPC connection)",
        "chaincode": "tests/chaincode_demo/demo_cc.py on fabshim (CCaaS, one server per org)",
        "endorsement_policy": dep.endorsement_policy(config),
        "batch": {"timeout_ms": batch.timeout_ms, "max_message_count": batch.max_message_count,
                  "absolute_max_bytes": batch.absolute_max_bytes,
                  "preferred_max_bytes": batch.preferred_max_bytes},
        "write": f"put(key, {len(VALUE)}-byte value)",
        "host": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "setup_s": setup_s,
        "final_height": height,
        "submit_sequential": sequential,
        "submit_concurrent": concurrent,
        "evaluate": evaluate,
    }
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"written {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
