"""Computing a round's aggregate: the same code under endorsement and in every org's node.

Secure mode: the mod-2^32 sum of the masked updates, minus the masks survivors added against
participants left out (from the seeds they revealed), is the sum of the weighted encodings; the
job's linear rule (FedAvg) turns it into the average. Clear mode: the job's rule over the visible
updates, plus an anomaly score of each update against their unweighted coordinate median. The
result is the aggregate's words (what the ledger hashes), who contributed and who was flagged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from . import codec, masks
from .errors import refuse
from .rules import Rule, rule_from_dict
from .rules import _integer as ints


@dataclass(frozen=True)
class Aggregate:
    words: np.ndarray                       # uint32 fixed-point words of the aggregate
    contributors: tuple[str, ...]
    flagged: tuple[str, ...] = ()
    distances: Mapping[str, int] = field(default_factory=dict)   # clear mode: squared distance to the median

    @property
    def data(self) -> bytes:
        return codec.pack(self.words)

    @property
    def hash(self) -> str:
        return codec.sha256_hex(self.data)


def secure_aggregate(rule: Rule, masked: Mapping[str, np.ndarray], samples: Mapping[str, int],
                     seeds: Mapping[tuple[str, str], bytes], left_out: list[str]) -> Aggregate:
    """``masked``: contributor -> masked words; ``seeds``: (survivor, left-out org) -> revealed pairwise seed."""
    if not rule.linear:
        raise refuse(f"rule '{rule.name}' cannot run on a masked sum")
    names = sorted(masked)
    total = codec.sum_mod([masked[m] for m in names])
    length = len(total)
    for s in names:
        for d in sorted(left_out):
            seed = seeds.get((s, d))
            if seed is None:
                raise refuse(f"the revealed seed of {s} for {d} is missing", 409)
            total = masks.apply_mask(total, masks.expand_mask(seed, length), -masks.mask_sign(s, d))
    n = sum(int(samples[m]) for m in names)
    return Aggregate(codec.from_signed(rule.from_weighted_sum(codec.to_signed(total), n)), tuple(names))


def anomaly_scores(rows: np.ndarray, factor: int) -> tuple[list[int], list[int]]:
    """Squared distance of each update to the unweighted coordinate-wise median of all updates, and the
    indices of those farther than ``factor``^2 times the median such distance.

    The reference ignores sample counts, so a small honest org is not pulled away from a reference
    the big orgs dominate; the typical distance is floored at one fixed-point unit per coordinate,
    so updates differing only by quantisation noise are never flagged.
    """
    if factor < 1:
        raise refuse(f"anomaly factor must be at least 1, got {factor}")
    ref = ints.coordinate_median(rows)
    dists = [ints.squared_distance(v, ref) for v in rows]
    typical = max(sorted(dists)[(len(dists) - 1) // 2], rows.shape[1])
    return dists, [i for i, d in enumerate(dists) if d > factor * factor * typical]


def clear_aggregate(rule: Rule, updates: Mapping[str, np.ndarray], samples: Mapping[str, int],
                    anomaly_factor: int) -> Aggregate:
    """The rule over visible updates (``updates``: contributor -> words). Flagged: the updates the rule
    left out when it selects, else those with an anomalous distance to the median."""
    names = sorted(updates)
    rows = ints.stack([codec.to_signed(updates[m]) for m in names])
    rule.check_updates(len(rows))
    out = rule.aggregate(rows, [int(samples[m]) for m in names])
    dists, far = anomaly_scores(rows, anomaly_factor)
    unused = [i for i in range(len(names)) if i not in out.used]
    flagged = unused if unused else far
    return Aggregate(codec.from_signed(out.aggregate), tuple(names), tuple(names[i] for i in flagged),
                     {m: d for m, d in zip(names, dists)})


def leave_one_out(rule: Rule, updates: Mapping[str, np.ndarray], samples: Mapping[str, int],
                  agg: Aggregate) -> dict[str, int]:
    """How far the aggregate moves without each update (squared distance); where the rule cannot run on
    one update fewer, FedAvg of the rest stands in. Clear mode only (rewards)."""
    names = sorted(updates)
    rows = ints.stack([codec.to_signed(updates[m]) for m in names])
    full = codec.to_signed(agg.words)
    weights = [int(samples[m]) for m in names]
    fallback = rule_from_dict({"rule": "fedavg"})
    out = {}
    for i, m in enumerate(names):
        keep = [j for j in range(len(names)) if j != i]
        if not keep:
            out[m] = 0
            continue
        use = rule if len(keep) >= rule.min_updates() else fallback
        without = use.aggregate(rows[keep], [weights[j] for j in keep]).aggregate
        out[m] = ints.squared_distance(full, without)
    return out
