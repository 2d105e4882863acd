"""Federated vs centralized test accuracy (3 orgs, Dirichlet alpha=0.5): breast cancer and MNIST 5k.

    .venv/bin/python benchmarks/fl_accuracy.py [--seed 0] [--out benchmarks/results/fl_accuracy.json]

The federated figure is the exact recipe the nodes run (``fedfabric.fl.simulate`` over
``fedfabric.fl.recipe``), from a bundled job file: each org's shard minus its validation hold-out,
the spec's local-training seeds, the fixed-point encoding of the sample-weighted update and the
protocol's integer aggregation -- bit-identical to the model the ledger finalizes (without DP).

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

import torch  # noqa: E402

from fedfabric.fl import dp as dpmod  # noqa: E402
from fedfabric.fl.simulate import centralized, simulate  # noqa: E402
from fedfabric.node.bootstrap import job_spec  # noqa: E402
from fedfabric.node.jobfile import load_job_file  # noqa: E402
from fedfabric_protocol.spec import JobSpec  # noqa: E402

JOBS = ROOT / "app" / "fedfabric" / "node" / "jobs"
MSP_OF = {f"org{i}": f"Org{i}MSP" for i in (1, 2, 3)}
CASES = [  # (name, job file, target gap in points or None)
    ("breast_cancer", "breast_cancer_secure.yaml", 1.0),
    ("mnist5k", "mnist_secure.yaml", 2.0),
    ("breast_cancer + DP", "breast_cancer_dp.yaml", None),
    ("digits, CNN, median", "digits_cnn_median.yaml", None),
]


def spec_of(job_file: Path, seed: int) -> JobSpec:
    """The ledger spec the job file becomes (as `fedfabric job create` builds it), with ``seed``."""
    job = load_job_file(job_file)
    job.draft["hyperparams"]["seed"] = seed
    return JobSpec.from_dict(job_spec(job, MSP_OF))


def system_recipe(spec: JobSpec) -> dict:
    """Test metrics of the model the nodes would finalize for ``spec`` (in-process, no ledger)."""
    sim = simulate(spec, dp_seed=spec.hyperparams.seed)
    last = sim.rounds[-1]
    out = {"accuracy": last.accuracy, "loss": last.loss, "per_round": [r.accuracy for r in sim.rounds]}
    cfg = dpmod.dp_config(spec.dp)
    if cfg is not None:
        out["epsilon"] = dpmod.epsilon(cfg, spec.rounds)
        out["delta"] = cfg.delta
    return out


def run_case(name: str, job_file: str, target: float | None, seed: int) -> dict:
    t0 = time.time()
    spec = spec_of(JOBS / job_file, seed)
    cen = centralized(spec)
    rows = {"system": system_recipe(spec)}
    h = spec.hyperparams
    out = {"job_file": f"app/fedfabric/node/jobs/{job_file}", "dataset": h.dataset, "arch": h.arch,
           "partition": f"{h.partition} alpha={h.alpha}", "orgs": len(h.shards), "rounds": spec.rounds,
           "epochs": h.epochs, "privacy": spec.privacy.value, "rule": spec.aggregation.to_dict(), "centralized": cen,
           "target_points": target, "recipes": {}}
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
    con.print("system = the nodes' recipe (job file; validation hold-out; fixed-point; the protocol's integer "
              "rule), bit-identical to the ledger's model without DP · centralized = pooled training data, "
              "rounds × epochs epochs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fl_accuracy.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    results = {name: run_case(name, f, target, args.seed) for name, f, target in CASES}
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
