"""Benchmark: size of the stake-weighted endorsement policy, compact (stake classes, nested OutOf)
against the minimal-winning-coalition OR it replaced.

    .venv/bin/python benchmarks/policy_size.py [--orgs 10,20,50] [--quorum 2/3] [--random N] [--seed S]
                                               [--grid STEP] [--out FILE]

For each consortium size and stake mix (equal stakes; 2, 3 and 4 distinct values; one stake per org)
it compiles the policy the contract keeps (``fedfabric_cc.policy.compile_policy``) and reports the
SignaturePolicyEnvelope's bytes (what Fabric keeps, at most 64 KB), the same policy's text, its OutOf
gates and principal references, the minimal count vectors and the compile time; a mix with no exact
envelope under 64 KB is reported as refused, with the contract's message. Next to it, the coalition
OR: its clause count (C(n, k) for equal stakes; the sum over minimal count vectors of the product of
C(n_i, v_i) in general), its string and envelope bytes, computed exactly without enumerating the
coalitions (checked against the enumerated form up to 12 orgs). No network. Prints a table and
writes benchmarks/results/policy_size.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from fractions import Fraction
from itertools import combinations
from math import comb
from pathlib import Path
from typing import Iterable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "chaincode"), str(ROOT)]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from fedfabric_cc import policy  # noqa: E402
from fedfabric_protocol.stakerule import stake_classes  # noqa: E402
from tests.chaincode import policy_reference as reference  # noqa: E402
from benchmarks.output import write_results  # noqa: E402

console = Console(width=200)


def org_names(n: int) -> list[str]:
    return [f"Org{i + 1}MSP" for i in range(n)]


def mixes(n: int) -> list[tuple[str, dict[str, int]]]:
    """(label, stakes) of one consortium size: the stake mixes the table reports."""
    names = org_names(n)

    def by_counts(counts: tuple[int, ...], values: tuple[int, ...]) -> dict[str, int]:
        it = iter(names)
        return {next(it): v for c, v in zip(counts, values) for _ in range(c)}

    def split(shares: tuple[int, ...]) -> tuple[int, ...]:
        """Counts proportional to ``shares`` summing to n (largest remainder, first share first)."""
        tot = sum(shares)
        base = [n * s // tot for s in shares]
        for i in sorted(range(len(shares)), key=lambda i: (-(n * shares[i] % tot), i))[:n - sum(base)]:
            base[i] += 1
        return tuple(base)

    out = [("equal (100)", {m: 100 for m in names}),
           ("2 values, 1:1 (100/200)", by_counts(split((1, 1)), (100, 200))),
           ("3 values, 1:1:1 (100/200/300)", by_counts(split((1, 1, 1)), (100, 200, 300))),
           ("4 values, 70:16:10:4 (100/200/300/500)", by_counts(split((70, 16, 10, 4)), (100, 200, 300, 500))),
           ("4 values, 1:1:1:1 (100/200/300/400)", by_counts(split((1, 1, 1, 1)), (100, 200, 300, 400))),
           ("4 values, 1:1:1:1 (100/150/225/340)", by_counts(split((1, 1, 1, 1)), (100, 150, 225, 340))),
           ("4 values, 1:1:1:1 (97/101/103/107)", by_counts(split((1, 1, 1, 1)), (97, 101, 103, 107))),
           ("all distinct (100+i)", {m: 100 + i for i, m in enumerate(names)})]
    return out


# ---- the coalition OR, sized without enumerating it
def _varint(v: int) -> int:
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def _field(payload: int) -> int:
    """Bytes of a length-delimited protobuf field (tag < 16) carrying ``payload`` bytes."""
    return 1 + _varint(payload) + payload


def _rule_bytes(k: int) -> int:
    """SignaturePolicy of one coalition of k orgs (index < 128): SignedBy, or NOutOf(k, k SignedBy rules)."""
    if k == 1:
        return 2
    return _field(2 + k * _field(2))


def coalition_or_size(stakes: dict[str, int], num: int, den: int) -> dict:
    """Clauses, principal references, string bytes and envelope bytes of the OR of every minimal winning
    coalition (``policy_reference.coalitions_term``), by dynamic programming over stake sums: a coalition is minimal
    winning iff it reaches the quota and loses without its smallest member, so with the orgs in ascending
    stake order, the coalitions whose smallest member is org j are j plus a set of later orgs whose sum
    is in [quota - s_j, quota)."""
    import numpy as np

    staked = sorted(((int(v), m) for m, v in stakes.items() if int(v) > 0))
    total = sum(v for v, _ in staked)
    quota = -(-num * total // den)                       # held >= quota  <=>  held * den >= num * total
    n = len(staked)
    cnt = np.zeros((n + 1, quota), dtype=np.int64)       # [k, sum]: sets of k later orgs with that sum (< quota)
    names = np.zeros((n + 1, quota), dtype=np.int64)     # ... and the sum over them of their principals' bytes
    cnt[0, 0] = 1
    by_k = np.zeros(n + 2, dtype=object)                 # coalitions by size
    text_names = 0
    for v, m in reversed(staked):                        # org j = (v, m); the DP holds the orgs after it
        lo = max(0, quota - v)
        c = cnt[:, lo:quota].sum(axis=1)
        nb = names[:, lo:quota].sum(axis=1)
        pb = len(m) + len("''.peer")
        for k in range(n + 1):
            if c[k]:
                by_k[k + 1] += int(c[k])
                text_names += int(nb[k]) + int(c[k]) * pb
        if v < quota:                                    # add org j for the orgs before it
            c_old, n_old = cnt[:-1, :quota - v].copy(), names[:-1, :quota - v].copy()
            cnt[1:, v:] += c_old
            names[1:, v:] += n_old + c_old * pb
    clauses = int(sum(by_k))
    refs = sum(k * int(w) for k, w in enumerate(by_k))
    text = text_names + sum(int(w) * (len("AND()") + k - 1) for k, w in enumerate(by_k) if k > 1 and w)
    if clauses > 1:
        text += len("OR()") + clauses - 1
    rules = sum(int(w) * _field(_rule_bytes(k)) for k, w in enumerate(by_k) if w)
    top = _field(2 + rules) if clauses > 1 else _rule_bytes(next(k for k, w in enumerate(by_k) if w))
    identities = sum(_field(len(policy._principal(m).SerializeToString())) for m in _pivotal(staked, quota))
    return {"clauses": clauses, "signed_by": refs, "policy_bytes": text, "envelope_bytes": _field(top) + identities}


def _pivotal(staked: list[tuple[int, str]], quota: int) -> list[str]:
    """Orgs in some minimal winning coalition: those whose stake turns some losing set of others winning."""
    out = []
    for i, (v, m) in enumerate(staked):
        reach = 1                                        # bit s: some set of the others sums to s
        for j, (w, _) in enumerate(staked):
            if j != i:
                reach |= reach << w
        window = ((1 << quota) - 1) ^ ((1 << max(0, quota - v)) - 1)     # sums in [quota - v, quota)
        if reach & window:
            out.append(m)
    return out


def check_against_enumeration(stakes: dict[str, int], num: int, den: int) -> None:
    """The analytic sizes equal the enumerated coalition OR's (small consortia only)."""
    cs = reference.minimal_winning_coalitions(stakes, num, den)
    term = reference.coalitions_term(cs)
    want = {"clauses": len(cs), "signed_by": sum(len(c) for c in cs),
            "policy_bytes": len(policy.to_string(term)), "envelope_bytes": len(policy.to_envelope(term))}
    got = coalition_or_size(stakes, num, den)
    assert got == want, (got, want)


def row(n: int, label: str, stakes: dict[str, int], num: int, den: int) -> dict:
    t0 = time.perf_counter()
    out: dict = {"orgs": n, "mix": label, "distinct_stakes": len(set(stakes.values()))}
    try:
        c = policy.compile_policy(stakes, num, den)
        out.update(compiled=True, error=None, policy_bytes=c["size"]["policy_bytes"],
                   envelope_bytes=c["size"]["envelope_bytes"], gates=c["size"]["gates"],
                   signed_by=c["size"]["signed_by"], vectors=len(c["vectors"]),
                   policy_head=c["policy"][:80])
    except policy.PolicyError as exc:
        out.update(compiled=False, error=str(exc), policy_bytes=None, envelope_bytes=None, gates=None,
                   signed_by=None, vectors=None)
    out["compile_s"] = round(time.perf_counter() - t0, 4)
    if n <= 12:
        check_against_enumeration(stakes, num, den)
    out["coalition_or"] = coalition_or_size(stakes, num, den)
    if len(set(stakes.values())) == 1:
        k = -(-num * n // den)
        out["coalition_or"]["clauses_formula"] = f"C({n},{k}) = {comb(n, k)}"
        assert comb(n, k) == out["coalition_or"]["clauses"]
    return out


def _fit(vectors: Iterable[tuple[list[int], list[int]]], num: int, den: int, n: int) -> dict:
    """How many of ``vectors`` ((values, counts): ``counts[i]`` orgs of stake ``values[i]``) have an exact
    policy under the limit, the refused ones and the envelope sizes of the others."""
    names = org_names(n)
    tried, sizes, refused = 0, [], []
    for values, counts in vectors:
        it = iter(names)
        stakes = {next(it): v for v, c in zip(values, counts) for _ in range(c)}
        tried += 1
        try:
            sizes.append(policy.compile_policy(stakes, num, den)["size"]["envelope_bytes"])
        except policy.PolicyError:
            refused.append({"values": list(values), "counts": list(counts)})
    sizes.sort()
    return {"orgs": n, "tried": tried, "fit": len(sizes), "refused": refused,
            "largest_envelope": sizes[-1] if sizes else 0, "median_envelope": sizes[len(sizes) // 2] if sizes else 0}


def random_four_values(tried: int, num: int, den: int, n: int = 50, seed: int = 5) -> dict:
    """How many random stake vectors of ``n`` orgs taking 4 distinct values (each 1..999; equal groups
    for a third of them, random group sizes otherwise) have an exact policy under the limit."""
    rng = random.Random(seed)

    def vectors() -> Iterator[tuple[list[int], list[int]]]:
        for t in range(tried):
            values = sorted(rng.sample(range(1, 1000), 4))
            if t % 3 == 0:
                counts = [n // 4 + (1 if i < n % 4 else 0) for i in range(4)]
            else:
                cuts = sorted(rng.sample(range(1, n), 3))
                counts = [cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], n - cuts[2]]
            yield values, counts

    return {**_fit(vectors(), num, den, n), "seed": seed}


def grid_four_values(step: int, num: int, den: int, n: int = 50) -> dict:
    """Every 50-org stake vector of 4 distinct values on a grid (multiples of ``step`` up to 1000) in
    four equal groups (13/13/12/12, lightest first and heaviest first): round stakes in equal groups
    are the hardest mixes seen."""
    vectors = ((list(values), list(counts)) for values in combinations(range(step, 1001, step), 4)
               for counts in ((13, 13, 12, 12), (12, 12, 13, 13)))
    return {**_fit(vectors, num, den, n), "step": step}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orgs", default="10,20,50", help="comma-separated consortium sizes")
    ap.add_argument("--quorum", default="2/3")
    ap.add_argument("--random", type=int, default=100, metavar="N",
                    help="also compile N random 50-org stake vectors of 4 distinct values (0: skip)")
    ap.add_argument("--seed", type=int, default=5, help="seed of the random stake vectors")
    ap.add_argument("--grid", type=int, default=0, metavar="STEP",
                    help="also compile every 50-org vector of 4 values that are multiples of STEP up to 1000, "
                         "in equal groups (100: 420 vectors, a few minutes; 0: skip)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "policy_size.json")
    args = ap.parse_args()
    q = Fraction(args.quorum)
    num, den = q.numerator, q.denominator
    rows = [row(n, label, st, num, den) for n in map(int, args.orgs.split(",")) for label, st in mixes(n)]

    table = Table(title=f"stake-weighted endorsement policy at {num}/{den} of the stake "
                        f"(envelope limit {policy.MAX_POLICY_BYTES:,} bytes)")
    for col in ("orgs", "stakes", "string B", "envelope B", "OutOf gates", "principals", "vectors", "compile s",
                "coalition OR clauses", "its string B", "its envelope B"):
        table.add_column(col, justify="left" if col == "stakes" else "right")
    for r in rows:
        co = r["coalition_or"]
        cells = ([f"{r['policy_bytes']:,}", f"{r['envelope_bytes']:,}", f"{r['gates']:,}", f"{r['signed_by']:,}",
                  f"{r['vectors']:,}"] if r["compiled"] else ["[red]refused[/red]", "", "", "", ""])
        table.add_row(str(r["orgs"]), r["mix"], *cells, f"{r['compile_s']:.3f}", f"{co['clauses']:,}",
                      f"{co['policy_bytes']:,}", f"{co['envelope_bytes']:,}")
    console.print(table)
    for r in rows:
        if not r["compiled"]:
            console.print(f"refused, {r['orgs']} orgs, {r['mix']}: {r['error']}")
    sample = random_four_values(args.random, num, den, seed=args.seed) if args.random else None
    if sample:
        console.print(f"{sample['orgs']} orgs, {sample['tried']} random stake vectors of 4 distinct values "
                      f"(1..999, random group sizes, seed {sample['seed']}): {sample['fit']} fit under "
                      f"{policy.MAX_POLICY_BYTES:,} bytes, largest envelope {sample['largest_envelope']:,} B, "
                      f"median {sample['median_envelope']:,} B; refused e.g. {sample['refused'][:2]}")
    grid = grid_four_values(args.grid, num, den) if args.grid else None
    if grid:
        console.print(f"{grid['orgs']} orgs, every stake vector of 4 multiples of {grid['step']} up to 1000 in equal "
                      f"groups ({grid['tried']}): {grid['fit']} fit, largest envelope {grid['largest_envelope']:,} B, "
                      f"median {grid['median_envelope']:,} B; refused {grid['refused']}")

    doc = {"host": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "quorum": [num, den],
           "limit_bytes": policy.MAX_POLICY_BYTES,
           "notes": ["compact: orgs of equal stake in one class, nested OutOf gates or bands (OR over the stakes two "
                     "classes leave the other two to hold, in runs where a band asks only for its increment over "
                     "the next), the smallest form",
                     "coalition_or: the OR of every minimal winning coalition (the previous compiler), sized "
                     "exactly without building it; checked against the built form up to 12 orgs",
                     "envelope_bytes: the SignaturePolicyEnvelope Fabric keeps (chaincode definition and key-level "
                     "policies), limited to limit_bytes; policy_bytes: the same policy as text, not limited"],
           "results": rows, "random_four_values": sample, "grid_four_values": grid}
    write_results(doc, args.out, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
