"""Drive whole rounds with the app's real codec and secure-aggregation masks."""
from __future__ import annotations

import json

import numpy as np

from fedfabric.fl import fixedpoint, secagg

from . import identities as ids
from .harness import ORGS, Ledger, meta_for, words


def open_and_register(led: Ledger, job_id: str, who=ORGS, keys: dict | None = None) -> tuple[int, dict]:
    """Open the next round, register ``who`` with fresh X25519 keys, close registration."""
    rec = led.call(ids.trainer(ORGS[0]), "open_round", job_id)
    r = rec["round"]
    led.call(ids.trainer(ORGS[0]), "start_registration", job_id, r)
    keys = {} if keys is None else keys
    for m in who:
        priv, pub = secagg.generate_keypair()
        keys[m] = (priv, pub)
        led.call(ids.trainer(m), "register", job_id, r, pub.hex())
    return r, keys


def seeds_for(keys: dict, me: str, others, job_id: str, r: int) -> dict[str, bytes]:
    ctx = f"{job_id}|{r}".encode()
    return {o: secagg.pairwise_seed(keys[me][0], keys[o][1], ctx) for o in others if o != me}


def secure_payloads(keys: dict, deltas: dict[str, np.ndarray], samples: dict[str, int], job_id: str, r: int,
                    participants) -> dict[str, bytes]:
    out = {}
    for m, d in deltas.items():
        enc = fixedpoint.encode_weighted(d, samples[m])
        masked = secagg.mask_update(enc, m, seeds_for(keys, m, participants, job_id, r))
        out[m] = masked.astype("<u4").tobytes()
    return out


def submit(led: Ledger, job_id: str, r: int, payloads: dict[str, bytes], samples: dict[str, int], at=None) -> None:
    for m, p in payloads.items():
        led.call(ids.trainer(m), "submit_update", job_id, r, meta_for(p, samples[m]), transient={"update": p}, at=at)


def reveal(led: Ledger, job_id: str, r: int, keys: dict, survivors, dropped, at) -> None:
    for s in survivors:
        seeds = {d: secagg.pairwise_seed(keys[s][0], keys[d][1], f"{job_id}|{r}".encode()).hex() for d in dropped}
        led.call(ids.trainer(s), "reveal_seeds", job_id, r, transient={"seeds": json.dumps(seeds).encode()}, at=at)


def vote_all(led: Ledger, job_id: str, r: int, model_hash: str, approve=ORGS, reject=(), at=None) -> None:
    for m in approve:
        led.call(ids.trainer(m), "vote", job_id, r, {"approve": True, "model_hash": model_hash,
                                                     "metrics": {"val_acc_milli": 900}}, at=at)
    for m in reject:
        led.call(ids.trainer(m), "vote", job_id, r, {"approve": False, "metrics": {"val_acc_milli": 100}}, at=at)


__all__ = ["open_and_register", "secure_payloads", "submit", "reveal", "vote_all", "words"]
