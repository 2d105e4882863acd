"""Bulyan (El Mhamdi et al., 2018): Krum picks a selection set of θ = n - 2f updates one at a time
(each pick leaves the set before the next Krum); then, coordinate by coordinate, the β = θ - 2f
selected values closest to the selection's median are averaged. Needs n >= 4f + 3."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _integer as ints
from .base import Outcome, Param, Rule, register


@register
class Bulyan(Rule):
    name = "bulyan"
    summary = "iterated Krum selection, then a coordinate-wise trimmed mean around the median"
    params = {"bulyan_f": Param(0, 250, doc="Byzantine updates tolerated")}

    def min_updates(self) -> int:
        return 4 * self["bulyan_f"] + 3

    def aggregate(self, rows: np.ndarray, weights: Sequence[int]) -> Outcome:
        self.check_updates(len(rows))
        f, n = self["bulyan_f"], len(rows)
        dist = ints.distance_matrix(rows)
        left, chosen = list(range(n)), []
        for _ in range(n - 2 * f):
            sub = [[dist[i][j] for j in left] for i in left]
            # Krum among the remaining; with fewer than 2f + 3 left it scores by every neighbour
            k = min(f, max(0, (len(left) - 3) // 2))
            scores = ints.krum_scores(sub, k)
            best = left[ints.order_by_score(rows[left], scores)[0]]
            chosen.append(best)
            left.remove(best)
        sel = rows[sorted(chosen)]
        beta = len(sel) - 2 * f
        med = ints.coordinate_median(sel)
        # per coordinate: the beta values nearest the median (ties: the smaller value first)
        dev = np.abs(sel - med)
        order = np.lexsort((sel, dev), axis=0)[:beta]
        closest = np.take_along_axis(sel, order, axis=0)
        return Outcome(ints.mean(closest), tuple(sorted(chosen)))
