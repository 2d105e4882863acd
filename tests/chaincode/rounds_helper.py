"""Drive whole rounds like the orgs' nodes would: real codec, X25519 round keys, pairwise masks, each org
computing the result itself with the protocol's aggregation code and voting with its next round key."""
from __future__ import annotations

import json
from typing import Any, Iterable, Optional

import numpy as np

from fedfabric.fl import fixedpoint, secagg
from fedfabric_protocol import aggregate, codec, optimizers
from fedfabric_protocol.optimizers import optimizer_from_dict
from fedfabric_protocol.rules import rule_from_dict
from fedfabric_protocol.states import Transient

from . import identities as ids
from .harness import ORGS, Ledger, h, meta_for

SAMPLES = {"Org1MSP": 100, "Org2MSP": 300, "Org3MSP": 50}


def model_hash_of(agg_hash: str) -> str:
    """Stand-in for the candidate model's hash (the contract never sees the float model)."""
    return h("model:" + agg_hash)


class Consortium:
    """The orgs of one job on a :class:`Ledger`: round keys, payloads and ballots as nodes make them."""

    def __init__(self, led: Ledger, job_id: str = "job1", orgs: Iterable[str] = ORGS,
                 samples: Optional[dict] = None) -> None:
        self.led, self.job_id, self.orgs = led, job_id, list(orgs)
        self.samples = dict(samples or SAMPLES)
        self.priv: dict[tuple[str, int], Any] = {}
        self.payloads: dict[int, dict[str, bytes]] = {}
        self.opt_state: Optional[bytes] = None        # server optimizer state after the latest version
        self.next_state: dict[int, bytes] = {}        # ... after round r, if it finalizes

    def call(self, msp: str, fn: str, *args: Any, **kw: Any) -> Any:
        return self.led.call(ids.trainer(msp), fn, *args, **kw)

    def round(self, r: int) -> dict:
        return self.call(self.orgs[0], "get_round", self.job_id, r)

    def job(self) -> dict:
        return self.call(self.orgs[0], "get_job", self.job_id)

    def fresh_key(self, msp: str, r: int) -> str:
        priv, pub = secagg.generate_keypair()
        self.priv[(msp, r)] = priv
        return pub.hex()

    # ---- phases
    def register(self, r: int, who: Iterable[str], **kw: Any) -> None:
        for m in who:
            self.call(m, "register", self.job_id, r, self.fresh_key(m, r), **kw)

    def start(self, r: int, who: Optional[str] = None, **kw: Any) -> dict:
        return self.call(who or self.orgs[0], "start_round", self.job_id, r, **kw)

    def payload(self, r: int, msp: str, delta: np.ndarray) -> bytes:
        rec = self.round(r)
        if rec["privacy"] == "secure":
            enc = fixedpoint.encode_weighted(delta, self.samples[msp], headroom=len(rec["participants"]))
            ctx = f"{self.job_id}|{r}".encode()
            seeds = {p: secagg.pairwise_seed(self.priv[(msp, r)], bytes.fromhex(rec["public_keys"][p]), ctx)
                     for p in rec["participants"] if p != msp}
            words = secagg.mask_update(enc, msp, seeds)
        else:
            words = fixedpoint.encode(delta)
        return np.asarray(words, dtype="<u4").tobytes()

    def submit(self, r: int, deltas: dict[str, np.ndarray], **kw: Any) -> dict[str, bytes]:
        return self.submit_payloads(r, {m: self.payload(r, m, d) for m, d in deltas.items()}, **kw)

    def submit_payloads(self, r: int, payloads: dict[str, bytes], **kw: Any) -> dict[str, bytes]:
        for m, p in payloads.items():
            self.call(m, "submit_update", self.job_id, r, meta_for(p, self.samples[m]), transient={"update": p}, **kw)
        self.payloads.setdefault(r, {}).update(payloads)
        return dict(payloads)

    def reveal(self, r: int, survivors: Iterable[str], left_out: list[str], **kw: Any) -> None:
        rec = self.round(r)
        ctx = f"{self.job_id}|{r}".encode()
        for s in survivors:
            seeds = {d: secagg.pairwise_seed(self.priv[(s, r)], bytes.fromhex(rec["public_keys"][d]), ctx).hex()
                     for d in left_out}
            self.call(s, "reveal_seeds", self.job_id, r, left_out, transient={"seeds": json.dumps(seeds).encode()},
                      **kw)

    def result(self, r: int, contributors: Optional[list[str]] = None) -> dict:
        """The result a node computes from the round's payloads (what it puts in its ballot)."""
        rec, job = self.round(r), self.job()
        rule = rule_from_dict(job["spec"]["aggregation"])
        contributors = sorted(contributors or self.payloads[r])
        n = job["spec"]["model"]["num_params"]
        words = {m: codec.unpack(self.payloads[r][m], n) for m in contributors}
        samples = {m: self.samples[m] for m in contributors}
        if rec["privacy"] == "secure":
            left_out = sorted(set(rec["participants"]) - set(contributors))
            ctx = f"{self.job_id}|{r}".encode()
            seeds = {(s, d): secagg.pairwise_seed(self.priv[(s, r)], bytes.fromhex(rec["public_keys"][d]), ctx)
                     for s in contributors for d in left_out}
            agg = aggregate.secure_aggregate(rule, words, samples, seeds, left_out)
        else:
            agg = aggregate.clear_aggregate(rule, words, samples, job["spec"]["incentives"]["anomaly_factor"])
        out = {"aggregate_hash": agg.hash, "model_hash": model_hash_of(agg.hash),
               "contributors": list(agg.contributors), "flagged": list(agg.flagged), "words": agg.words}
        if "server_optimizer" in job["spec"]:
            step = optimizers.server_step(optimizer_from_dict(job["spec"]["server_optimizer"]), agg.words,
                                          self.opt_state)
            self.next_state[r] = step.state
            out.update(step_hash=step.hash, state_hash=step.state_hash, step_words=step.words,
                       model_hash=model_hash_of(step.hash))
        return out

    def ballot(self, r: int, msp: str, res: Optional[dict], approve: bool = True, next_key: bool = True) -> dict:
        b: dict[str, Any] = {"approve": approve, "metrics": {"val_accuracy_milli": 900 if approve else 100}}
        if res is not None:
            b.update({k: res[k] for k in ("aggregate_hash", "model_hash", "contributors", "flagged", "step_hash",
                                          "state_hash") if k in res})
        last = r >= self.job()["spec"]["rounds"]
        b["next_public_key"] = self.fresh_key(msp, r + 1) if next_key and not last else None
        return b

    def vote(self, r: int, who: Iterable[str], res: Optional[dict], approve: bool = True, next_key: bool = True,
             **kw: Any) -> None:
        for m in who:
            self.call(m, "vote", self.job_id, r, self.ballot(r, m, res, approve, next_key), **kw)

    def finalize(self, r: int, who: Optional[str] = None, **kw: Any) -> dict:
        """Close round ``r`` (passing the base optimizer state, as a node does, unless ``transient`` is given)."""
        if self.opt_state is not None and "transient" not in kw:
            kw["transient"] = {Transient.OPTIMIZER_STATE.value: self.opt_state}
        out = self.call(who or self.orgs[0], "finalize_round", self.job_id, r, **kw)
        if out["state"] == "finalized" and r in self.next_state:
            self.opt_state = self.next_state[r]
        return out

    def full_round(self, r: int, deltas: dict[str, np.ndarray], **kw: Any) -> dict:
        """submit and vote (everyone in ``deltas``), finalize."""
        self.submit(r, deltas, **kw)
        res = self.result(r)
        self.vote(r, sorted(deltas), res, **kw)
        return self.finalize(r, **kw)


def deltas_for(orgs: Iterable[str], seed: int = 0, n: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.normal(0, 0.05, n) for m in orgs}


