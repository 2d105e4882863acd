"""Benchmark: one secure FL round of protocol v2 on the real ledger, by model size.

    .venv/bin/python benchmarks/ledger_round.py [--sizes 10000,100000,1000000,10000000] [--repeat 3]
                                                [--offset 6000]

Brings up its own network (3 Raft orderers, 3 peers, ports shifted by --offset, temporary run dir;
always taken down at the end), deploys the product chaincode, initializes the consortium (3 orgs,
stake 100 each, quorum 2/3) and, per model size, runs a secure job's rounds the way the orgs' nodes
do -- three ordered phases:

    submit ×3 (in parallel)  →  every org computes the aggregate itself, votes with its next round key
    (×3 in parallel)  →  the leader finalizes (recomputing under endorsement up to endorsed_max_params;
    above it, finalizing on the stake quorum of identical aggregate hashes)

Up to ``endorsed_max_params`` (1M) the masked payloads travel in the transient map into the private
collection and each org reads the others' from its own peer; above it (10M) every org's node serves
its payload over mutual TLS (the network's per-org training-node certificates) and each org fetches
the other two, checks their hashes and aggregates. Each phase's writes wait until all three peers
committed them. Round 1 (which also registers the keys) is excluded from the figures.

Per round it reports the time of each phase with its breakdown (Gateway endorsement, ordering +
commit wait, fetch + aggregate), the public ledger bytes (serialized blocks via qscc) and the
number of invalidated transactions (block validation flags); per size the p50; and the timeline of
one round. Prints tables and writes benchmarks/results/ledger_round.json.
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
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from fedfabric.artifacts import ArtifactStore  # noqa: E402
from fedfabric.ledger import contract as gw_contract  # noqa: E402
from fedfabric.network import fabricbin  # noqa: E402
from fedfabric.network.layout import Layout  # noqa: E402
from fedfabric.network.manager import SiteManager  # noqa: E402
from fedfabric.node import exchange  # noqa: E402
from fedfabric_protocol import aggregate, codec  # noqa: E402
from fedfabric_protocol.records import Result  # noqa: E402
from tests.chaincode_live import helpers as H  # noqa: E402
from tests.conftest import test_config  # noqa: E402

console = Console(stderr=True, width=160)
PHASES = ("submit", "compute", "vote", "finalize")


class GatewayTimes:
    """Per-thread split of every write into Gateway endorsement and ordering + commit wait."""

    def __init__(self) -> None:
        self.local = threading.local()
        self._submit_async = gw_contract.Contract.submit_async
        self._get_status = gw_contract.SubmittedTransaction.get_status
        times = self

        def submit_async(this, *a, **kw):
            t0 = time.perf_counter()
            try:
                return times._submit_async(this, *a, **kw)
            finally:
                times.add("endorse+send", time.perf_counter() - t0)

        def get_status(this, *a, **kw):
            t0 = time.perf_counter()
            try:
                return times._get_status(this, *a, **kw)
            finally:
                times.add("order+commit", time.perf_counter() - t0)

        gw_contract.Contract.submit_async = submit_async
        gw_contract.SubmittedTransaction.get_status = get_status
        self.sink: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def add(self, k: str, v: float) -> None:
        with self.lock:
            self.sink.setdefault(k, []).append(v)

    def take(self) -> dict[str, float]:
        """Median per write since the last call."""
        with self.lock:
            out = {k: statistics.median(v) for k, v in self.sink.items() if v}
            self.sink = {}
        return out


def p50(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


class Nodes:
    """Each org's payload server (its training node's exchange) and the other orgs' fetches."""

    def __init__(self, net: SiteManager, tmp: Path) -> None:
        layout: Layout = net.layout
        cfg = net.config
        roots = {o.msp_id: layout.org_tls_ca(o).read_bytes() for o in cfg.orgs}
        self.tls, self.stores, self.endpoints, self.servers = {}, {}, {}, []
        for o in cfg.orgs:
            d = layout.node_tls_dir(o)
            self.tls[o.msp_id] = exchange.NodeTls((d / "server.crt").read_bytes(), (d / "server.key").read_bytes(), roots)
            self.stores[o.msp_id] = ArtifactStore(tmp / o.name)
            srv = exchange.ExchangeServer(self.stores[o.msp_id], layout.node_endpoint(o), self.tls[o.msp_id]).start()
            self.servers.append(srv)
            self.endpoints[o.msp_id] = layout.node_endpoint(o)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def compute_by_peers(lj: H.LiveJob, run: H.RoundRun, cons: H.Consortium) -> dict[str, Result]:
    """Every org reads the other two payloads from its own peer (hash-checked) and aggregates."""
    def one(m: str) -> Result:
        words = {o: codec.unpack(run.payloads[o] if o == m else H.eventually(
            lambda o=o: cons.parties[m].trainer.get_update(lj.job_id, run.round, o)), lj.n) for o in run.payloads}
        agg = aggregate.secure_aggregate(lj.rule, words, run.samples, {}, [])
        return Result(agg.hash, H.h(f"model-{agg.hash}"), agg.contributors)

    futs = {m: lj.pool.submit(one, m) for m in run.payloads}
    return {m: f.result() for m, f in futs.items()}


def compute_by_nodes(lj: H.LiveJob, run: H.RoundRun, nodes: Nodes) -> dict[str, Result]:
    """Every org fetches the other two payloads from their nodes over mTLS (hash-checked) and aggregates."""
    def one(m: str) -> Result:
        words = {}
        for o, p in run.payloads.items():
            data = p if o == m else exchange.fetch(nodes.endpoints[o], H.h(p), o, nodes.tls[m], max_bytes=4 * lj.n)
            words[o] = codec.unpack(data, lj.n)
        agg = aggregate.secure_aggregate(lj.rule, words, run.samples, {}, [])
        return Result(agg.hash, H.h(f"model-{agg.hash}"), agg.contributors)

    futs = {m: lj.pool.submit(one, m) for m in run.payloads}
    return {m: f.result() for m, f in futs.items()}


def one_round(cons: H.Consortium, lj: H.LiveJob, r: int, nodes: Nodes, gwt: GatewayTimes, via_peers: bool) -> dict:
    run = H.RoundRun(r)
    t0 = time.perf_counter()
    lj.submit(run, seed=r, endpoints=nodes.endpoints)
    t0 += run.timings["prepare"]          # making up the updates stands in for training: not ledger time
    for m, p in run.payloads.items():
        nodes.stores[m].put(p)
    marks = {"start": 0.0, "submitted": time.perf_counter() - t0}
    breakdown = {"submit": gwt.take()}
    tc = time.perf_counter()
    results = compute_by_peers(lj, run, cons) if via_peers else compute_by_nodes(lj, run, nodes)
    if len(set(results.values())) != 1:
        raise AssertionError(f"round {r}: the orgs computed different aggregates")
    run.result = next(iter(results.values()))
    expected = H.expected_fedavg(run.encoded, run.samples)
    if run.result.aggregate_hash != codec.sha256_hex(expected):
        raise AssertionError(f"round {r}: the aggregate differs from plain FedAvg of the quantized updates")
    run.timings["compute"] = time.perf_counter() - tc
    marks["computed"] = time.perf_counter() - t0
    lj.vote(run)
    marks["voted"] = time.perf_counter() - t0
    breakdown["vote"] = gwt.take()
    lj.finalize(run)
    marks["finalized"] = time.perf_counter() - t0
    breakdown["finalize"] = gwt.take()
    if run.closed.get("state") != "finalized":
        raise AssertionError(f"round {r} did not finalize: {run.closed.get('outcome', {}).get('reason')}")
    party = cons.first()
    first, last = run.first_block, run.last_block
    blocks = sorted({w.block_number for w in run.writes.values()})
    return {"round": r, "seconds": marks["finalized"], "phases": {p: run.timings.get(p, 0.0) for p in PHASES},
            "gateway_breakdown": breakdown, "marks": marks, "blocks": blocks, "block_count": len(blocks),
            "ledger_bytes": H.block_bytes(party, first, last),
            "invalid_txs": len(H.invalid_transactions(party, first, last)),
            "recomputed": run.closed["outcome"]["aggregate"]["recomputed"],
            "payload_bytes_each": len(next(iter(run.payloads.values())))}


def bench_size(cons: H.Consortium, n: int, repeat: int, window_s: int, nodes: Nodes, gwt: GatewayTimes,
               via_peers: bool) -> dict:
    spec = H.secure_job_spec(H.uid(f"bench-{n}"), n, window_s=window_s, rounds=repeat + 1)
    lj = H.LiveJob(cons, spec)
    runs, error = [], None
    try:
        lj.create()
        first = lj.start()                                     # round 1 also registers the keys
        lj.full_round(first, endpoints=nodes.endpoints)
        gwt.take()
        for r in range(2, repeat + 2):
            runs.append(one_round(cons, lj, r, nodes, gwt, via_peers))
            x = runs[-1]
            console.print(f"  {n:>10,} params  round {r}: {x['seconds']:.2f} s  " +
                          "  ".join(f"{p} {x['phases'][p]:.2f}" for p in PHASES) +
                          f"  blocks {x['block_count']}  ledger {x['ledger_bytes']:,} B  invalid {x['invalid_txs']}")
    except Exception as exc:  # noqa: BLE001 - report what broke and go on with the next size
        error = f"{type(exc).__name__}: {exc}"
        console.print(f"[red]size {n} failed:[/red] {error}")
        traceback.print_exc()
    finally:
        lj.close()
    endorsed = n <= spec.get("endorsed_max_params", 1_000_000)
    out = {"num_params": n, "job_id": spec["job_id"], "repeat": repeat, "runs": runs, "error": error,
           "exchange": "endorsed" if endorsed else "nodes", "fetch": "peers" if via_peers else "nodes"}
    if runs:
        out.update({"round_s_p50": p50([x["seconds"] for x in runs]),
                    "phases_s_p50": {p: p50([x["phases"][p] for x in runs]) for p in PHASES},
                    "ledger_bytes_p50": p50([x["ledger_bytes"] for x in runs]),
                    "block_count_p50": p50([x["block_count"] for x in runs]),
                    "invalid_txs_per_round_max": max(x["invalid_txs"] for x in runs),
                    "payload_bytes_each": runs[0]["payload_bytes_each"]})
    return out


def table(results: list[dict]) -> Table:
    t = Table(title="one secure round of protocol v2 on the ledger (3 orgs, p50 over the rounds after the first)")
    for col in ("params", "payloads", "round p50", "submit", "compute", "vote", "finalize", "blocks",
                "public ledger bytes/round", "invalid tx/round", "runs", "error"):
        t.add_column(col, justify="left" if col in ("payloads", "error") else "right")
    for r in results:
        if not r["runs"]:
            t.add_row(f"{r['num_params']:,}", f"{r['exchange']}, fetched from {r['fetch']}", "", "", "", "", "", "",
                      "", "", "0", r["error"] or "")
            continue
        s = r["phases_s_p50"]
        t.add_row(f"{r['num_params']:,}", f"{r['exchange']}, fetched from {r['fetch']} "
                  f"({r['payload_bytes_each'] / 1e6:.1f} MB each)",
                  f"{r['round_s_p50']:.2f} s", *(f"{s[p]:.2f} s" for p in PHASES), f"{r['block_count_p50']:.0f}",
                  f"{r['ledger_bytes_p50']:,.0f}", str(r["invalid_txs_per_round_max"]),
                  f"{len(r['runs'])}/{r['repeat']}", r["error"] or "")
    return t


def timeline(r: dict) -> Table:
    t = Table(title=f"timeline of round {r['runs'][0]['round']} at {r['num_params']:,} parameters")
    for col in ("phase", "from (s)", "to (s)", "took (s)", "breakdown (median per write)"):
        t.add_column(col, justify="left" if col in ("phase", "breakdown (median per write)") else "right")
    x = r["runs"][0]
    m = x["marks"]
    spans = (("submit ×3 (endorse + order + commit on every peer)", "start", "submitted", "submit"),
             ("compute: fetch the others' payloads, aggregate", "submitted", "computed", None),
             ("vote ×3 (ballot + next round key)", "computed", "voted", "vote"),
             ("finalize (recompute, version, open next round)", "voted", "finalized", "finalize"))
    for name, a, b, key in spans:
        br = x["gateway_breakdown"].get(key, {}) if key else {}
        t.add_row(name, f"{m[a]:.3f}", f"{m[b]:.3f}", f"{m[b] - m[a]:.3f}",
                  ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(br.items())))
    return t


def _terminate(signum, frame):  # noqa: ANN001
    raise SystemExit(f"signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000,10000000", help="model sizes (parameters)")
    ap.add_argument("--repeat", type=int, default=3, help="measured rounds per size (after the first)")
    ap.add_argument("--offset", type=int, default=6000, help="port offset of the benchmark's own network")
    ap.add_argument("--window", type=int, default=300, help="registration/submission/approval windows (s)")
    ap.add_argument("--fetch", default="nodes,peers", help="where orgs read each other's payloads below the threshold: "
                    "nodes (their exchange, what a node prefers), peers (their peer's private data), or both")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ledger_round.json"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    signal.signal(signal.SIGTERM, _terminate)

    fabricbin.locate().check()
    results: list[dict] = []
    setup: dict = {}
    load = os.getloadavg()
    gwt = GatewayTimes()
    with tempfile.TemporaryDirectory(prefix="fedfabric-bench-") as tmp:
        net = SiteManager(test_config(args.offset), Path(tmp) / "run", report=lambda m: console.print(f"[dim]• {m}[/dim]"))
        nodes: Nodes | None = None
        try:
            t0 = time.monotonic()
            net.up()
            setup["up_s"] = time.monotonic() - t0
            H.deploy_product(net)
            nodes = Nodes(net, Path(tmp) / "stores")
            with H.Consortium(net.layout) as cons:
                cons.wait_ready()
                cons.init()
                cons.wait_endorsers()
                for n in sizes:
                    modes = ["nodes"] if n > 1_000_000 else [m for m in args.fetch.split(",") if m]
                    for mode in modes:
                        console.print(f"[bold]{n:,} parameters[/bold] ({4 * n / 1e6:.2f} MB per update), payloads "
                                      f"fetched from {mode}")
                        results.append(bench_size(cons, n, args.repeat, args.window, nodes, gwt, mode == "peers"))
        finally:
            if nodes:
                nodes.stop()
            t0 = time.monotonic()
            net.down()
            setup["down_s"] = time.monotonic() - t0

    doc = {"fabric": fabricbin.read_pin()["FABRIC_RELEASE"], "host": {"cpus": os.cpu_count(),
                                                                      "python": platform.python_version()},
           "load_avg_at_start": load, "topology": "3 Raft orderers + 3 peers (one per org), TLS, CCaaS Python chaincode",
           "endorsement": "smallest winning coalition containing the caller, endorsed in parallel (2 of 3 orgs)",
           "batch_timeout_ms": net.config.batch.timeout_ms, "setup": setup, "results": results,
           "notes": ["rounds after the first: submit x3, vote x3 (with next round keys), finalize",
                     "up to 1M parameters payloads go through the private collection (no push during endorsement, "
                     "peers pull at commit) and endorsers recompute the aggregate; above, payloads go node to node "
                     "over mTLS and the round finalizes on the hash quorum",
                     "ledger_bytes: serialized blocks of the round (qscc); payloads are never in blocks"]}
    out = Console(width=170)
    out.print(table(results))
    for r in results:
        if r["runs"]:
            out.print(timeline(r))
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    console.print(f"written {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0 if all(r["error"] is None and len(r["runs"]) == r["repeat"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
