"""Federated vs centralized test accuracy (3 orgs, Dirichlet alpha=0.5): breast cancer and MNIST 5k.

    .venv/bin/python benchmarks/fl_accuracy.py [--seed 0] [--out benchmarks/results/fl_accuracy.json]

Two federated figures per dataset:

* ``system`` — the exact recipe the nodes run, from a bundled job file: each org's shard minus its
  20 % validation hold-out, the spec's local-training seeds, the fixed-point encoding of the
  sample-weighted update and the contract's integer FedAvg. It is ``in_process`` of
  ``benchmarks/fl_vs_ledger.py``, which is bit-identical to the model the ledger finalizes.
* ``float sim`` — ``fedfabric.fl.simulate.run_federated``: unquantized float FedAvg over the whole
  shards (no hold-out), for comparison.

Plus a DP run of the system recipe (breast cancer, ``breast_cancer_dp.yaml``) with the epsilon the
ledger records (RDP accountant, delta from the job), and the small CNN on the 8x8 digits (clear
mode, coordinate-median rule: ``digits_cnn_median.yaml``). The baseline is what the demo reports: the
same model trained centrally on the pooled training data for rounds x local epochs epochs. All
accuracies are on the dataset's held-out test split. Prints a table; writes JSON.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

from benchmarks.fl_vs_ledger import dp_config, in_process  # noqa: E402
from fedfabric.fl import dp as dpmod  # noqa: E402
from fedfabric.fl.datasets import load_dataset  # noqa: E402
from fedfabric.fl.models import vector_to_model  # noqa: E402
from fedfabric.fl.simulate import centralized_baseline, run_federated  # noqa: E402
from fedfabric.fl.train import evaluate  # noqa: E402
from fedfabric.node.bootstrap import job_spec  # noqa: E402
from fedfabric.node.jobfile import load_job_file  # noqa: E402
from fedfabric.node.task import resolve_arch_kwargs, task_for  # noqa: E402

JOBS = ROOT / "app" / "fedfabric" / "node" / "jobs"
MSP_OF = {f"org{i}": f"Org{i}MSP" for i in (1, 2, 3)}
CASES = [  # (name, job file, target gap in points or None)
    ("breast_cancer", "breast_cancer_secure.yaml", 1.0),
    ("mnist5k", "mnist_secure.yaml", 2.0),
    ("breast_cancer + DP", "breast_cancer_dp.yaml", None),
    ("digits, CNN, median", "digits_cnn_median.yaml", None),
]


def spec_of(job_file: Path, seed: int) -> dict:
    """The ledger spec the job file becomes (as `fedfabric job create` builds it), with ``seed``."""
    job = load_job_file(job_file)
    job.hyperparams["seed"] = seed
    return job_spec(job, MSP_OF)


def centralized(spec: dict) -> dict:
    """The demo's baseline: pooled training data, rounds x local epochs, the job's optimizer settings."""
    h = spec["hyperparams"]
    ds = load_dataset(h["dataset"], seed=int(h["seed"]))
    return centralized_baseline(ds, h["arch"], resolve_arch_kwargs(h, ds), epochs=int(h["epochs"]) * spec["rounds"],
                                lr=float(h["lr"]), batch_size=int(h["batch_size"]), optimizer=h["optimizer"],
                                seed=int(h["seed"]))


def system_recipe(spec: dict) -> dict:
    """Test metrics of the model the nodes would finalize for ``spec`` (in-process, no ledger)."""
    _, vec = in_process(spec, dp_seed=int(spec["hyperparams"]["seed"]))
    task = task_for({"job_id": spec["job_id"], "spec": spec}, spec["hyperparams"]["shards"][0])
    ds = load_dataset(spec["hyperparams"]["dataset"], seed=int(spec["hyperparams"]["seed"]))
    out = evaluate(vector_to_model(task.new_model(), vec), ds.X_test, ds.y_test)
    cfg = dp_config(spec)
    if cfg is not None:
        out["epsilon"] = dpmod.epsilon(cfg, spec["rounds"])
        out["delta"] = cfg.delta
    return out


def float_sim(spec: dict) -> dict:
    """``simulate.run_federated`` with the job's model, partition and local training (float FedAvg)."""
    h = spec["hyperparams"]
    ds = load_dataset(h["dataset"], seed=int(h["seed"]))
    hist = run_federated(ds, h["arch"], resolve_arch_kwargs(h, ds), n_orgs=len(h["shards"]), alpha=float(h["alpha"]),
                         rounds=spec["rounds"], epochs=int(h["epochs"]), lr=float(h["lr"]),
                         batch_size=int(h["batch_size"]), optimizer=h["optimizer"], mu=float(h["mu"]),
                         seed=int(h["seed"]))
    return hist[-1]


def run_case(name: str, job_file: str, target: float | None, seed: int) -> dict:
    t0 = time.time()
    spec = spec_of(JOBS / job_file, seed)
    cen = centralized(spec)
    rows = {"system": system_recipe(spec)}
    if not spec["dp"]["enabled"]:
        rows["float sim"] = float_sim(spec)
    h = spec["hyperparams"]
    out = {"job_file": f"app/fedfabric/node/jobs/{job_file}", "dataset": h["dataset"], "arch": h["arch"],
           "partition": f"{h['partition']} alpha={h['alpha']}", "orgs": len(h["shards"]), "rounds": spec["rounds"],
           "epochs": int(h["epochs"]), "privacy": spec["privacy"], "centralized": cen, "target_points": target,
           "recipes": {}}
    for recipe, m in rows.items():
        gap = 100 * (cen["accuracy"] - m["accuracy"])
        out["recipes"][recipe] = {**m, "gap_points": gap,
                                  "met": None if target is None else bool(gap <= target)}
    out["seconds"] = time.time() - t0
    return out


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="federated vs centralized test accuracy (3 orgs, Dirichlet α=0.5)")
    for c in ("case", "recipe", "rounds×epochs", "centralized", "federated", "gap (pts)", "target", "met", "ε (δ)"):
        t.add_column(c, justify="left" if c in ("case", "recipe") else "right")
    for name, r in results.items():
        for recipe, m in r["recipes"].items():
            eps = f"{m['epsilon']:.2f} ({m['delta']:g})" if "epsilon" in m else "-"
            target = "-" if r["target_points"] is None else f"≤ {r['target_points']:g}"
            met = "-" if m["met"] is None else ("yes" if m["met"] else "NO")
            t.add_row(name, recipe, f"{r['rounds']}×{r['epochs']}", f"{100 * r['centralized']['accuracy']:.2f} %",
                      f"{100 * m['accuracy']:.2f} %", f"{m['gap_points']:+.2f}", target, met, eps)
    con = Console(width=None if sys.stdout.isatty() else 130)
    con.print(t)
    con.print("system = the nodes' recipe (job file; validation hold-out; fixed-point; integer FedAvg), "
              "bit-identical to the ledger's model without DP · float sim = simulate.run_federated (float FedAvg, "
              "no hold-out) · centralized = pooled training data, rounds × epochs epochs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fl_accuracy.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {name: run_case(name, f, target, args.seed) for name, f, target in CASES}
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
