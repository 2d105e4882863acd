"""Benchmark: network bring-up and tear-down on this machine, and the running network's memory.

    .venv/bin/python benchmarks/network_lifecycle.py [--repeat 3] [--offset 16000]

Measures (on a fresh run directory each time, ports shifted by --offset):
  warm `up` time (binaries already built), total resident memory (RSS) of the orderer, peer and
  Fabric CA processes once up, `down` time. Prints a table and writes benchmarks/results/network_lifecycle.json.
The cold binary build is measured by `network/build-fabric.sh` itself with an empty GOCACHE/GOMODCACHE
(see --cold-build).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

from fedfabric.network import fabricbin  # noqa: E402
from fedfabric.network.manager import SiteManager  # noqa: E402
from tests.conftest import test_config  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cold_build() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GOCACHE": f"{tmp}/gocache", "GOMODCACHE": f"{tmp}/gomod",
               "FEDFABRIC_CACHE": f"{tmp}/cache"}
        t0 = time.monotonic()
        subprocess.run([str(ROOT / "network" / "build-fabric.sh")], env=env, check=True,
                       capture_output=True)
        elapsed = time.monotonic() - t0
        subprocess.run(["chmod", "-R", "u+w", tmp], check=False)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--offset", type=int, default=16000)
    ap.add_argument("--cold-build", action="store_true", help="also time a build from empty Go caches")
    args = ap.parse_args()

    fabricbin.locate().check()
    runs = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            net = SiteManager(test_config(args.offset), Path(tmp) / "run")
            t0 = time.monotonic()
            net.up()
            up_s = time.monotonic() - t0
            statuses = net.status()
            rss = {s.node_id: rss_kib(s.pid) for s in statuses if s.pid}
            t0 = time.monotonic()
            net.down()
            down_s = time.monotonic() - t0
        runs.append({"up_s": up_s, "down_s": down_s, "rss_total_mib": sum(rss.values()) / 1024,
                     "rss_by_node_mib": {k: v / 1024 for k, v in rss.items()}})
        print(f"run {i + 1}: up {up_s:.2f}s  down {down_s:.2f}s  RSS {runs[-1]['rss_total_mib']:.0f} MiB",
              file=sys.stderr)

    result = {
        "fabric": fabricbin.read_pin()["FABRIC_RELEASE"],
        "fabric_ca": fabricbin.read_pin()["FABRIC_CA_RELEASE"],
        "nodes": "3 Raft orderers + 3 peers + 3 Fabric CAs, TLS everywhere, channel joined",
        "node_count": len(runs[-1]["rss_by_node_mib"]),
        "repeat": args.repeat,
        "up_s_median": statistics.median(r["up_s"] for r in runs),
        "down_s_median": statistics.median(r["down_s"] for r in runs),
        "rss_total_mib_median": statistics.median(r["rss_total_mib"] for r in runs),
        "runs": runs,
    }
    if args.cold_build:
        result["cold_build_s"] = cold_build()

    print(f"\n{'metric':<34}{'value':>12}")
    print("-" * 46)
    print(f"{'warm up (median)':<34}{result['up_s_median']:>10.2f} s")
    print(f"{'down (median)':<34}{result['down_s_median']:>10.2f} s")
    print(f"{'RSS of ' + str(result['node_count']) + ' nodes once up (median)':<34}"
          f"{result['rss_total_mib_median']:>8.0f} MiB")
    if "cold_build_s" in result:
        print(f"{'cold build of Fabric + CA binaries':<34}{result['cold_build_s']:>10.1f} s")
    out = ROOT / "benchmarks" / "results" / "network_lifecycle.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"\nwritten {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
