"""The endorser's clock against the proposal's: no client moves time past honest endorsers.

A proposal's timestamp is chosen by the client, and every deadline of the protocol is checked
against it. Each org's chaincode server therefore refuses, at endorsement, any write whose
timestamp is more than ``max_skew_s`` from its own clock (``chaincode.max_clock_skew_s`` in
consortium.yaml). With the stake-weighted endorsement policy a forged time needs endorsers holding
the quorum of stake. The gate only accepts or refuses; what a transaction writes never depends on
the endorser's clock, so endorsers that accept agree bit for bit.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

from fabshim.contract import ChaincodeError, Context

DEFAULT_MAX_SKEW_S = 30


class SkewGate:
    """Refuse transactions whose timestamp is off this endorser's clock by more than ``max_skew_s``."""

    def __init__(self, max_skew_s: int = DEFAULT_MAX_SKEW_S, clock: Callable[[], float] = time.time) -> None:
        if max_skew_s < 1:
            raise ValueError("max_skew_s must be at least 1 second")
        self.max_skew_s, self.clock = int(max_skew_s), clock

    def check(self, ctx: Context) -> None:
        ts = ctx.stub.get_tx_timestamp()
        t = ts.seconds + ts.nanos / 1e9
        off = t - self.clock()
        if abs(off) > self.max_skew_s:
            when = datetime.fromtimestamp(max(0, int(ts.seconds)), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise ChaincodeError(f"clock skew: the transaction's timestamp {when} is {off:+.0f} s from this "
                                 f"endorser's clock (at most ±{self.max_skew_s} s allowed); check the client's "
                                 "clock", 400)
