"""Benchmark: the same federated job in-process (no ledger) and through fedfabric on a real network.

    .venv/bin/python benchmarks/fl_vs_ledger.py [--job app/fedfabric/node/jobs/breast_cancer_secure.yaml]
                                                [--offset -3000] [--rounds N]

Both runs follow one recipe (``fedfabric.fl.recipe``): each org's shard and validation split, the
same initial model, local training seeded by the job and the round, the same fixed-point words and
the protocol's own aggregation. The in-process run (``fedfabric.fl.simulate``) trains the orgs one
after another in this process (torch with one thread, like each node) and skips masks (they cancel
exactly), keys, transactions and events. The ledger run starts one ``fedfabric node`` process per
org on a network of its own; their rounds are timed from the contract's events as they commit.

Reported: time per round for both (the first ledger round also registers the keys and is reported
on its own), the ledger's overhead per round (p50 of ledger minus in-process, rounds 2..N), the
ledger round's phases (train + submit, compute + vote, finalize, from the events' arrival),
invalidated transactions in the job's blocks, final test accuracy for both, and whether the two final
models are identical bit for bit. Prints a table and writes benchmarks/results/fl_vs_ledger_<job>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

import torch  # noqa: E402
import yaml  # noqa: E402

from fedfabric.artifacts import ArtifactStore, model_hash  # noqa: E402
from fedfabric.client import open_client  # noqa: E402
from fedfabric.fl.models import vector_to_model  # noqa: E402
from fedfabric.fl.simulate import simulate  # noqa: E402
from fedfabric.fl.task import held_out_split, task_for  # noqa: E402
from fedfabric.fl.train import evaluate  # noqa: E402
from fedfabric.network.deploy import product_deployment  # noqa: E402
from fedfabric.network.manager import SiteManager  # noqa: E402
from fedfabric.node.bootstrap import create_job, init_consortium  # noqa: E402
from fedfabric.node.demo import DEFAULT_JOB, start_nodes, stop_nodes  # noqa: E402
from fedfabric.node.jobfile import load_job_file  # noqa: E402
from fedfabric_protocol.spec import JobSpec  # noqa: E402
from tests.chaincode_live.helpers import Party, invalid_transactions  # noqa: E402
from tests.conftest import default_raw, shift_ports  # noqa: E402

CLOSING = ("RoundFinalized", "RoundFailed", "JobCompleted")


class EventClock:
    """Wall-clock arrival of the job's events on org1's peer: per round, when each phase ended."""

    def __init__(self, stream, job_id: str) -> None:
        self.stream, self.job_id = stream, job_id
        self.seen: dict[int, dict[str, list[float]]] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for ev in self.stream:
                body = json.loads(ev.payload)
                if body.get("job_id") == self.job_id and isinstance(body.get("round"), int):
                    self.seen.setdefault(body["round"], {}).setdefault(ev.event_name, []).append(time.perf_counter())
        except Exception:  # noqa: BLE001 - the stream ends when the benchmark closes it
            return

    def closed_at(self, r: int) -> float | None:
        names = self.seen.get(r, {})
        return next((names[n][0] for n in CLOSING if n in names), None)

    def phases(self, r: int, opened: float) -> dict[str, float]:
        """train+submit (open -> last update), compute+vote (-> last ballot), finalize (-> close)."""
        ev = self.seen[r]
        sub, vote, close = max(ev["UpdateSubmitted"]), max(ev["Voted"]), self.closed_at(r)
        return {"train+submit": sub - opened, "compute+vote": vote - sub, "finalize": close - vote}


def through_ledger(job_file: Path, offset: int, rounds: int | None) -> dict:
    raw = shift_ports(default_raw(), offset)
    with tempfile.TemporaryDirectory(prefix="fedfabric-bench-") as tmp:
        root = Path(tmp)
        cfg_path = root / "consortium.yaml"
        cfg_path.write_text(yaml.safe_dump(raw))
        from fedfabric.network.config import load_config
        config = load_config(cfg_path)
        net = SiteManager(config, root / "run")
        net.up()
        procs: dict = {}
        try:
            net.deploy(product_deployment(config))
            gw, admin = open_client("org1", "Admin", config=config, run_root=net.layout.root)
            admin.wait_ready()
            init_consortium(admin, config)
            job = load_job_file(job_file, [o.name for o in config.orgs])
            if rounds:
                job.draft["rounds"] = rounds
            job = job.renamed(f"{job.job_id}-bench")
            h0 = admin.contract.network.qscc().chain_info()["height"]
            stream = gw.get_network(config.channel).chaincode_events("fedfabric", start_block=h0)
            clock = EventClock(stream, job.job_id)
            spec = JobSpec.from_dict(create_job(admin, job, {o.name: o.msp_id for o in config.orgs})["spec"])
            t_start = time.perf_counter()
            procs = start_nodes([o.name for o in config.orgs if o.msp_id in spec.participants], job.job_id,
                                net.layout.root, cfg_path)
            while True:
                j = admin.get_job(job.job_id)
                if j["status"] != "active":
                    break
                if all(p.poll() is not None for p in procs.values()):
                    raise RuntimeError("all node processes exited")
                time.sleep(0.2)
            time.sleep(0.5)   # the last events reach the listener
            stop_nodes(procs)
            procs = {}
            latest = admin.get_version(job.job_id, "latest")
            vec = ArtifactStore(net.layout.root / "fl" / "org1" / "artifacts").get_model(latest["model_hash"])
            h1 = admin.contract.network.qscc().chain_info()["height"]
            closes = [clock.closed_at(r) for r in range(1, spec.rounds + 1)]
            per_round = [b - a for a, b in zip([t_start] + closes[:-1], closes)]
            phases = [clock.phases(r, closes[r - 2]) for r in range(2, spec.rounds + 1)]
            bad = invalid_transactions(Party("org1", "Org1MSP", admin, admin), h0, h1 - 1)
            stream.close()
            gw.close()
            return {"spec": spec, "per_round": per_round, "phases": phases, "vec": vec,
                    "model_hash": latest["model_hash"], "finalized": j["rounds_finalized"], "failed": j["rounds_failed"],
                    "blocks": h1 - h0, "invalid_txs": bad}
        finally:
            stop_nodes(procs)
            net.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", type=Path, default=DEFAULT_JOB)
    ap.add_argument("--offset", type=int, default=-3000)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()

    led = through_ledger(args.job, args.offset, args.rounds)
    spec: JobSpec = led["spec"]
    sim = simulate(spec)
    local = [r.seconds for r in sim.rounds]
    X, y = held_out_split(spec.hyperparams)
    task = task_for(spec, spec.hyperparams.shards[0])
    acc_led = evaluate(vector_to_model(task.new_model(), led["vec"]), X, y)["accuracy"]
    acc_loc = sim.rounds[-1].accuracy
    steady = led["per_round"][1:]
    overhead = [a - b for a, b in zip(steady, local[1:])]
    phase_p50 = {k: statistics.median(p[k] for p in led["phases"]) for k in led["phases"][0]} if led["phases"] else {}
    res = {"job": spec.job_id, "dataset": spec.hyperparams.dataset, "arch": spec.model.arch_id,
           "num_params": spec.model.num_params, "rounds": spec.rounds, "epochs": spec.hyperparams.epochs,
           "privacy": spec.privacy.value, "rule": spec.aggregation.to_dict(), "load_avg_at_start": load,
           "rounds_finalized": led["finalized"], "rounds_failed": led["failed"],
           "in_process_s_per_round_p50": statistics.median(local[1:] or local),
           "ledger_first_round_s": led["per_round"][0],
           "ledger_s_per_round_p50": statistics.median(steady or led["per_round"]),
           "ledger_overhead_s_per_round_p50": statistics.median(overhead) if overhead else None,
           "ledger_phases_s_p50": phase_p50, "ledger_s_per_round": led["per_round"], "in_process_s_per_round": local,
           "invalid_txs": led["invalid_txs"], "accuracy_in_process": acc_loc, "accuracy_ledger": acc_led,
           "identical_models": bool(model_hash(sim.model) == led["model_hash"]), "blocks_added": led["blocks"]}
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"same job in-process vs through fedfabric ({res['dataset']}, {res['arch']}, "
                    f"{res['num_params']} params, {res['rounds']} rounds × {res['epochs']} epochs, {res['privacy']})")
    t.add_column("")
    t.add_column("in-process (no ledger)", justify="right")
    t.add_column("fedfabric (real network)", justify="right")
    t.add_row("time per round, p50 (rounds 2..N)", f"{res['in_process_s_per_round_p50']:.3f} s",
              f"{res['ledger_s_per_round_p50']:.3f} s")
    t.add_row("ledger overhead per round, p50", "", f"{res['ledger_overhead_s_per_round_p50']:.3f} s")
    for k, v in phase_p50.items():
        t.add_row(f"  ledger phase: {k}", "", f"{v:.3f} s")
    t.add_row("first round (registers the keys)", "", f"{res['ledger_first_round_s']:.3f} s")
    t.add_row("final test accuracy", f"{acc_loc * 100:.2f} %", f"{acc_led * 100:.2f} %")
    t.add_row("rounds finalized / failed", f"{res['rounds']} / 0", f"{res['rounds_finalized']} / {res['rounds_failed']}")
    t.add_row("final models identical (SHA-256)", "", "yes" if res["identical_models"] else "NO")
    t.add_row("invalidated transactions", "", str(len(res["invalid_txs"])))
    t.add_row("blocks added", "", str(res["blocks_added"]))
    Console().print(t)
    out = args.out or ROOT / "benchmarks" / "results" / f"fl_vs_ledger_{args.job.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
