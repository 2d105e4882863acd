"""Centralized vs federated accuracy (3 orgs, Dirichlet alpha=0.5) on breast cancer and MNIST 5k."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))

from fedfabric.fl.datasets import load_dataset  # noqa: E402
from fedfabric.fl.simulate import centralized_baseline, run_federated  # noqa: E402

CASES = {
    "breast_cancer": dict(arch="logreg", kw=lambda ds: dict(in_dim=30, n_classes=2), target=1.0,
                          central=dict(epochs=20, lr=0.01), fed=dict(rounds=10, epochs=3, lr=0.01)),
    "mnist5k": dict(arch="mlp", kw=lambda ds: dict(in_dim=784, n_classes=10, hidden=128), target=2.0,
                    central=dict(epochs=20, lr=0.01), fed=dict(rounds=20, epochs=2, lr=0.01, mu=0.01)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/fl_accuracy.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {}
    for name, c in CASES.items():
        t0 = time.time()
        ds = load_dataset(name, seed=args.seed)
        cen = centralized_baseline(ds, c["arch"], c["kw"](ds), seed=args.seed, **c["central"])
        hist = run_federated(ds, c["arch"], c["kw"](ds), n_orgs=3, alpha=0.5, seed=args.seed, **c["fed"])
        gap = 100 * (cen["accuracy"] - hist[-1]["accuracy"])
        results[name] = {"arch": c["arch"], "central": cen, "federated_final": hist[-1], "history": hist,
                         "gap_points": gap, "target_points": c["target"], "met": gap <= c["target"],
                         "config": {"central": c["central"], "federated": c["fed"], "orgs": 3, "alpha": 0.5},
                         "seconds": time.time() - t0}
    print(f"{'dataset':<15}{'central':>9}{'federated':>11}{'gap(pts)':>10}{'target':>8}{'met':>5}")
    for name, r in results.items():
        print(f"{name:<15}{100*r['central']['accuracy']:>9.2f}{100*r['federated_final']['accuracy']:>11.2f}"
              f"{r['gap_points']:>10.2f}{r['target_points']:>8.1f}{str(r['met']):>5}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
