"""Benchmark: the same federated job in-process (no ledger) and through fedfabric on a real network.

    .venv/bin/python benchmarks/fl_vs_ledger.py [--job app/fedfabric/node/jobs/breast_cancer_secure.yaml]
                                                [--offset 35000] [--rounds N]

Both runs use the same recipe: each org's shard and validation split, the same initial model, the
same local training seeds, the same fixed-point encoding and the contract's own integer FedAvg.
The in-process run skips masks (they cancel exactly), keys, transactions and events. Reported:
wall time per round for both, the ledger's overhead per round, final test accuracy for both, and
whether the two final models are identical bit for bit (they should be: the ledger adds no noise).
Prints a table and writes benchmarks/results/fl_vs_ledger.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from fedfabric.artifacts import ArtifactStore, model_hash  # noqa: E402
from fedfabric.client import open_client  # noqa: E402
from fedfabric.fl import dp as dpmod  # noqa: E402
from fedfabric.fl import fixedpoint  # noqa: E402
from fedfabric.fl.models import vector_to_model  # noqa: E402
from fedfabric.fl.train import evaluate, local_train  # noqa: E402
from fedfabric.network.deploy import product_deployment  # noqa: E402
from fedfabric.network.manager import Network  # noqa: E402
from fedfabric.node.bootstrap import create_job, init_consortium, job_spec  # noqa: E402
from fedfabric.node.demo import DEFAULT_JOB, start_nodes, stop_nodes  # noqa: E402
from fedfabric.node.jobfile import load_job_file  # noqa: E402
from fedfabric.node.task import task_for, test_split  # noqa: E402
from fedfabric_cc import aggregation, codec  # noqa: E402
from fedfabric_cc.aggregator import _apply_rule  # noqa: E402
from tests.conftest import default_raw, shift_ports  # noqa: E402


def dp_config(spec: dict) -> dpmod.DPConfig | None:
    """The job's DP settings as the nodes build them (None when DP is off)."""
    d = spec["dp"]
    if not d["enabled"]:
        return None
    return dpmod.DPConfig(clip_norm=d["clip_norm_milli"] / 1000, noise_multiplier=d["noise_multiplier_milli"] / 1000,
                          delta=10.0 ** -d["delta_exp"])


def in_process(spec: dict, dp_seed: int = 0) -> tuple[list[float], np.ndarray]:
    """Rounds without any ledger; returns per-round seconds and the final parameters.

    Without DP the result is bit-identical to the ledger path. With DP each update is clipped and
    noised exactly as a node does it, from a seeded generator (the nodes draw fresh noise), so the run
    is reproducible but not bit-identical to a given ledger run.
    """
    job = {"job_id": spec["job_id"], "spec": spec}
    hyper = spec["hyperparams"]
    tasks = [task_for(job, m) for m in hyper["shards"]]
    vec = tasks[0].initial
    dp_cfg, rng = dp_config(spec), np.random.default_rng(dp_seed)
    times = []
    for r in range(1, spec["rounds"] + 1):
        t0 = time.perf_counter()
        total = np.zeros(vec.size, np.uint32)
        samples, values = 0, []
        for t in tasks:
            _, update, _ = local_train(t.new_model(), vec, t.X_train, t.y_train, epochs=int(hyper["epochs"]),
                                       lr=float(hyper["lr"]), batch_size=int(hyper["batch_size"]),
                                       optimizer=hyper["optimizer"], mu=float(hyper["mu"]),
                                       seed=int(hyper["seed"]) * 1000 + r)
            if dp_cfg is not None:
                update = dpmod.privatize(update, dp_cfg, rng)
            if spec["privacy"] == "secure":
                total = fixedpoint.add_mod(total, fixedpoint.encode_weighted(update, t.samples, headroom=len(tasks)))
            else:
                values.append(codec.to_signed(fixedpoint.encode(update)))
            samples += t.samples
        if spec["privacy"] == "secure":
            avg = aggregation.fedavg_from_weighted_sum(total, samples)
        else:  # the contract's own rule implementation (integer arithmetic)
            avg, _ = _apply_rule(spec["aggregation"], values, [t.samples for t in tasks])
        delta = fixedpoint.decode(codec.from_signed(avg).astype(np.uint32))
        vec = (vec.astype(np.float64) + delta).astype(np.float32)
        times.append(time.perf_counter() - t0)
    return times, vec


def through_ledger(job_file: Path, offset: int, rounds: int | None) -> dict:
    raw = shift_ports(default_raw(), offset)
    with tempfile.TemporaryDirectory(prefix="fedfabric-bench-") as tmp:
        root = Path(tmp)
        cfg_path = root / "consortium.yaml"
        cfg_path.write_text(yaml.safe_dump(raw))
        from fedfabric.network.config import load_config
        config = load_config(cfg_path)
        net = Network(config, root / "run")
        net.up()
        procs = {}
        try:
            net.deploy(product_deployment(config))
            gw, admin = open_client("org1", "Admin", config=config, run_root=net.layout.root)
            admin.wait_ready()
            init_consortium(admin, config)
            job = load_job_file(job_file, [o.name for o in config.orgs])
            if rounds:
                job.rounds = rounds
            job.job_id = f"{job.job_id}-bench"
            spec = create_job(admin, job, {o.name: o.msp_id for o in config.orgs})["spec"]
            h0 = admin.contract.network.qscc().chain_info()["height"]
            t_start = time.perf_counter()
            members = set(spec.get("participants") or spec["hyperparams"]["shards"])
            procs = start_nodes([o.name for o in config.orgs if o.msp_id in members], job.job_id,
                                net.layout.root, cfg_path)
            marks, seen = [], 0
            while True:
                j = admin.get_job(job.job_id)
                done = j["rounds_finalized"] + j["rounds_failed"]
                while seen < done:
                    marks.append(time.perf_counter())
                    seen += 1
                if j["status"] != "active":
                    break
                if all(p.poll() is not None for p in procs.values()):
                    raise RuntimeError("all node processes exited")
                time.sleep(0.1)
            stop_nodes(procs)
            procs = {}
            latest = admin.get_version(job.job_id, "latest")
            vec = ArtifactStore(net.layout.root / "fl" / "org1" / "artifacts").get_model(latest["model_hash"])
            h1 = admin.contract.network.qscc().chain_info()["height"]
            per_round = [b - a for a, b in zip([t_start] + marks[:-1], marks)]
            gw.close()
            return {"spec": spec, "per_round": per_round, "vec": vec, "model_hash": latest["model_hash"],
                    "finalized": j["rounds_finalized"], "failed": j["rounds_failed"], "blocks": h1 - h0}
        finally:
            stop_nodes(procs)
            net.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", type=Path, default=DEFAULT_JOB)
    ap.add_argument("--offset", type=int, default=35000)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fl_vs_ledger.json")
    args = ap.parse_args()

    led = through_ledger(args.job, args.offset, args.rounds)
    spec = led["spec"]
    local_times, local_vec = in_process(spec)
    X, y = test_split(spec["hyperparams"])
    task = task_for({"job_id": spec["job_id"], "spec": spec}, spec["hyperparams"]["shards"][0])
    acc_led = evaluate(vector_to_model(task.new_model(), led["vec"]), X, y)["accuracy"]
    acc_loc = evaluate(vector_to_model(task.new_model(), local_vec), X, y)["accuracy"]
    res = {"job": spec["job_id"], "dataset": spec["hyperparams"]["dataset"], "arch": spec["model"]["arch_id"],
           "num_params": spec["model"]["num_params"], "rounds": spec["rounds"], "epochs": spec["hyperparams"]["epochs"],
           "privacy": spec["privacy"], "rounds_finalized": led["finalized"], "rounds_failed": led["failed"],
           "in_process_s_per_round_p50": statistics.median(local_times),
           "ledger_s_per_round_p50": statistics.median(led["per_round"]),
           "ledger_s_per_round": led["per_round"], "in_process_s_per_round": local_times,
           "ledger_overhead_s_per_round_p50": statistics.median(led["per_round"]) - statistics.median(local_times),
           "accuracy_in_process": acc_loc, "accuracy_ledger": acc_led,
           "identical_models": bool(model_hash(local_vec) == led["model_hash"]),
           "blocks_added": led["blocks"]}
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"same job in-process vs through fedfabric ({res['dataset']}, {res['arch']}, "
                    f"{res['num_params']} params, {res['rounds']} rounds × {res['epochs']} epochs, {res['privacy']})")
    t.add_column("")
    t.add_column("in-process (no ledger)", justify="right")
    t.add_column("fedfabric (real network)", justify="right")
    t.add_row("wall time per round, p50", f"{res['in_process_s_per_round_p50']:.3f} s", f"{res['ledger_s_per_round_p50']:.3f} s")
    t.add_row("ledger overhead per round, p50", "", f"{res['ledger_overhead_s_per_round_p50']:.3f} s")
    t.add_row("final test accuracy", f"{acc_loc * 100:.2f} %", f"{acc_led * 100:.2f} %")
    t.add_row("rounds finalized / failed", f"{res['rounds']} / 0", f"{res['rounds_finalized']} / {res['rounds_failed']}")
    t.add_row("final models identical (SHA-256)", "", "yes" if res["identical_models"] else "NO")
    t.add_row("blocks added", "", str(res["blocks_added"]))
    Console().print(t)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
