"""One organization's training node: driven by the ledger, no coordinator.

The node listens to the contract's events on its own peer; every event (and a one-second tick,
for deadlines that pass without an event) wakes :meth:`OrgNode.step`, which reads the job and the
current round from the ledger and does this org's next duty:

=============  ================================================================================
round state    duty
=============  ================================================================================
(none/closed)  open the next round                                           (leader first)
open           start registration                                            (leader first)
registration   register a fresh X25519 key; close when all registered or the window passed
collecting     train from the base version, encode, mask with pairwise seeds, submit privately;
               after the window: reveal seeds of dropped peers, then aggregate (leader first)
aggregated     fetch the aggregate, check its hash, apply it, evaluate on own validation data,
               vote; finalize once decided                                    (leader first)
finalized      store the new version in the artifact store (hash checked against the ledger)
=============  ================================================================================

"Leader first": the round's stake-drawn leader acts at once, others only if the duty is still
undone after a grace period, so a crashed leader cannot stall the consortium. Races are harmless:
the contract refuses a second transition and the node moves on. State that must survive a crash
(the round's private key, models) is on disk, so a restarted node rejoins the current round.

Only the job's participants (``spec.participants``; every staked member when the field is absent)
take part; a node whose org is not one of them stops with :class:`NodeError` at once.

What a running node survives (logged, retried on the next tick): an unreachable peer, a commit that
timed out or was invalidated, a transient refusal (status 503 such as "not available on this peer",
or an endorsement hiccup without a contract status), a local artifact that does not check out. A
refusal that is final for one duty (4xx other than 409) is logged as an error and that duty is left
to the round's deadlines. An aggregate whose bytes do not hash to the ledger's value is never used:
the node votes no. What stops it: :class:`NodeError` (unknown job, not a participant, a recipe this
node cannot follow).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ..artifacts import ArtifactError, ArtifactStore, model_hash
from ..client import FedFabricClient, Rejected, update_meta
from ..ledger import GatewayError
from ..fl import dp as dpmod
from ..fl import fixedpoint, secagg
from ..fl.models import vector_to_model
from ..fl.train import evaluate, local_train
from .task import TaskError, TrainingTask, task_for
from fedfabric_cc.expiry import state_deadline

log = logging.getLogger("fedfabric.node")

TERMINAL = ("finalized", "failed")
MAX_ACCURACY_DROP = 0.25   # vote no if the candidate loses more than this on our own validation data
TRANSIENT_STATUSES = (502, 503, 504)   # "not available on this peer" and the like: try again later
REPEAT_LOG_S = 30.0        # the same problem is logged again (at its level) at most this often


@dataclass
class NodeOptions:
    grace: float = 4.0            # seconds a non-leader waits before doing a leader's duty
    tick: float = 1.0             # wake-up interval when no event arrives
    stop_after_round: int | None = None   # testing: exit (as if crashed) once this round reaches a state
    stop_in_state: str = "collecting"
    job_wait: float = 10.0        # seconds an unknown job id is waited for (this peer may lag) before giving up


@dataclass
class RoundLog:
    """What this node did in a round (kept locally, for the report and for restarts)."""

    round: int
    events: list[dict] = field(default_factory=list)


class NodeStopped(Exception):
    """Raised inside the loop to stop the node (test crash hook)."""


class NodeError(Exception):
    """This node cannot follow the job at all (unknown job, org not a participant, unusable recipe)."""


class TransientRefusal(Exception):
    """A ledger write refused for a reason that may pass (status 503, endorsement hiccup): retry later."""

    def __init__(self, what: str, exc: Rejected) -> None:
        super().__init__(f"{what} refused for now: {exc.message} (status {exc.status or 'none'})")
        self.rejected = exc


class AggregateMismatch(ArtifactError):
    """The aggregate bytes this peer served do not hash to the value the ledger recorded."""


def is_transient(exc: Rejected) -> bool:
    """A refusal worth retrying: no contract status (endorsement/commit hiccup) or a 50x 'not now'."""
    return exc.status is None or exc.status in TRANSIENT_STATUSES


def job_participants(job: dict) -> list[str] | None:
    """The job's ``spec.participants`` (sorted MSP ids), or None when the job predates the field."""
    parts = job["spec"].get("participants")
    return sorted(parts) if isinstance(parts, list) else None


class OrgNode:
    """The training node of ``msp_id`` for one job."""

    def __init__(self, client: FedFabricClient, msp_id: str, job_id: str, workdir: Path,
                 options: NodeOptions | None = None, events: Any = None,
                 progress: Callable[[str, dict], None] | None = None) -> None:
        self.client = client
        self.msp = msp_id
        self.job_id = job_id
        self.dir = Path(workdir)
        self.store = ArtifactStore(self.dir / "artifacts")
        self.keys_dir = self.dir / "keys" / job_id
        self.opt = options or NodeOptions()
        self.events = events
        self.progress = progress or (lambda what, info: None)
        self.task: TrainingTask | None = None
        self._seen: dict[tuple, float] = {}
        self._done_local: set[tuple] = set()
        self._wake: "queue.Queue[Any]" = queue.Queue()
        self._stop = threading.Event()
        self._started: float | None = None
        self._prepared: dict[int, tuple[dict, bytes, float]] = {}
        self._problems: dict[str, float] = {}

    # ---- small helpers
    def _note(self, what: str, **info: Any) -> None:
        log.info("%s %s %s", self.msp, what, " ".join(f"{k}={v}" for k, v in info.items()))
        rec = {"t": time.time(), "org": self.msp, "job": self.job_id, "what": what, **info}
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f"{self.job_id}.log.jsonl", "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.progress(what, info)

    def _due(self, key: tuple, leader: str | None) -> bool:
        """Leader: now. Others: once ``key`` has been pending for the grace period."""
        now = time.monotonic()
        first = self._seen.setdefault(key, now)
        return leader == self.msp or now - first >= self.opt.grace

    def _doing(self, text: str, **info: Any) -> None:
        """Tell the progress hook what the node is busy with (not logged: it changes every tick)."""
        self.progress("doing", {"text": text, **info})

    def _problem(self, level: int, text: str) -> None:
        """Log ``text`` at ``level`` unless the same text was logged there in the last REPEAT_LOG_S."""
        now = time.monotonic()
        if len(self._problems) > 256:
            self._problems.clear()
        if now - self._problems.get(text, -REPEAT_LOG_S) >= REPEAT_LOG_S:
            self._problems[text] = now
            log.log(level, "%s: %s", self.msp, text)
            self.progress("problem", {"text": text, "level": logging.getLevelName(level)})
        else:
            log.debug("%s: %s", self.msp, text)

    def _try(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run a ledger write. A lost race (409) is not an error; a transient refusal is retried on the
        next tick (raises :class:`TransientRefusal`); a final refusal is logged as an error and the duty
        is left to the round's deadlines (returns None, as for a race)."""
        try:
            return fn()
        except Rejected as exc:
            if exc.status in (409,):
                log.debug("%s %s: %s", self.msp, what, exc.message)
                return None
            if is_transient(exc):
                raise TransientRefusal(what, exc) from None
            self._problem(logging.ERROR, f"{what} refused by the contract: {exc.message} (status {exc.status})")
            return None

    # ---- keys (the round's X25519 private key must survive a restart; never logged)
    def _key_path(self, r: int) -> Path:
        return self.keys_dir / f"round-{r:06d}.x25519"

    def _round_key(self, r: int, create: bool) -> X25519PrivateKey | None:
        p = self._key_path(r)
        if p.exists():
            return X25519PrivateKey.from_private_bytes(p.read_bytes())
        if not create:
            return None
        priv, _ = secagg.generate_keypair()
        raw = priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        return priv

    @staticmethod
    def _public(priv: X25519PrivateKey) -> bytes:
        return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    # ---- models
    def _model(self, digest: str, version: int, depth: int = 0) -> np.ndarray:
        """Parameters of a version: from the store, else rebuilt from its round's aggregate (a node that
        was down while versions were finalized catches up this way), always hash-checked."""
        assert self.task is not None
        if version == 0:
            if model_hash(self.task.initial) != digest:
                raise ArtifactError(f"initial model hash {model_hash(self.task.initial)} is not the ledger's {digest}")
            self.store.put_model(self.task.initial)
        if self.store.has(digest) or version == 0 or depth > 50:
            return self.store.get_model(digest)
        ver = self.client.get_version(self.job_id, version)
        rec = self.client.get_round(self.job_id, ver["round"])
        self._model(rec["base_hash"], rec["base_version"], depth + 1)
        cand, got = self._candidate(rec)
        if got != digest:
            raise ArtifactError(f"version {version}: its aggregate gives {got[:12]}…, the ledger says {digest[:12]}…")
        self.store.put_model(cand)
        self._note("caught up", version=version, model=digest[:12])
        return cand

    def _aggregate_bytes(self, r: int) -> bytes:
        """The round's aggregate, its bytes checked against the ledger's hash (:class:`AggregateMismatch`)."""
        try:
            _, data = self.client.get_aggregate(self.job_id, r)
        except ValueError as exc:  # the client's own hash check failed: never use these bytes
            raise AggregateMismatch(f"round {r}: the aggregate served by this peer is corrupt ({exc})") from None
        return data

    def _candidate(self, rec: dict) -> tuple[np.ndarray, str]:
        """Base version + the ledger's aggregate (hash-checked), as float32."""
        data = self._aggregate_bytes(rec["round"])
        delta = fixedpoint.decode(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        base = self._model(rec["base_hash"], rec["base_version"])
        cand = (base.astype(np.float64) + delta).astype(np.float32)
        return cand, model_hash(cand)

    # ---- who takes part
    @staticmethod
    def _expected(job: dict, rec: dict) -> set[str]:
        """Orgs expected to register and vote in a round: the job's participants that had stake when it
        opened (every staked member when the job has no participants list)."""
        staked = {m for m, s in rec["stakes"].items() if s > 0}
        parts = job_participants(job)
        return staked if parts is None else staked & set(parts)

    # ---- duties
    def _open_next(self, job: dict, leader: str | None) -> None:
        r = job["current_round"] + 1
        if self._due(("open", r), leader):
            out = self._try("open_round", lambda: self.client.open_round(self.job_id))
            if out is not None:
                self._note("round opened", round=r, leader=out.value["leader"])

    def _registration(self, job: dict, rec: dict, report: dict) -> None:
        r = rec["round"]
        parts = report["participants"]
        me = parts.get(self.msp, {})
        expected = self._expected(job, rec)
        if me.get("registered_at") is None and self.msp in expected:
            priv = self._round_key(r, create=True)
            assert priv is not None
            self._doing("registering a fresh round key", round=r)
            if self._try("register", lambda: self.client.register(self.job_id, r, self._public(priv))) is not None:
                self._note("registered", round=r)
            return
        registered = {m for m, p in parts.items() if p.get("registered_at") is not None}
        everyone = registered >= expected
        self._doing(f"waiting for registrations ({len(registered & expected)}/{len(expected)})", round=r)
        if everyone or time.time() > rec["deadlines"]["registration"]:
            if self._due(("close_reg", r), rec["leader"]):
                out = self._try("close_registration", lambda: self.client.close_registration(self.job_id, r))
                if out is not None:
                    self._note("registration closed", round=r, state=out.value["state"])

    def _train_and_submit(self, job: dict, rec: dict, report: dict) -> None:
        r, spec = rec["round"], job["spec"]
        priv = self._round_key(r, create=False)
        if spec["privacy"] == "secure" and priv is None:
            self._note("cannot submit: the round key was lost (this org counts as dropped)", round=r)
            self._done_local.add(("submit", r))
            return
        if r not in self._prepared:   # a retried submission resends the same bytes (same DP noise draw)
            try:
                self._prepared = {r: self._prepare_update(job, rec, report, priv)}
            except fixedpoint.FixedPointError as exc:   # e.g. training diverged: nothing sensible to send
                self._problem(logging.ERROR, f"round {r}: the update cannot be encoded ({exc}); "
                                             "this org sits this round out")
                self._done_local.add(("submit", r))
                return
        meta, payload, loss = self._prepared[r]
        self._doing("submitting the update", round=r)
        out = self._try("submit_update", lambda: self.client.submit_update(self.job_id, r, meta, payload))
        self._done_local.add(("submit", r))
        self._prepared.pop(r, None)
        if out is not None:
            self._note("update submitted", round=r, samples=meta["sample_count"], sha256=meta["sha256"][:12],
                       train_loss=round(loss, 4))

    def _prepare_update(self, job: dict, rec: dict, report: dict,
                        priv: X25519PrivateKey | None) -> tuple[dict, bytes, float]:
        """Train from the base version, privatize (DP), encode and mask: (meta, payload, last loss)."""
        assert self.task is not None
        r, spec = rec["round"], job["spec"]
        hyper = self.task.hyper
        base = self._model(rec["base_hash"], rec["base_version"])
        epochs = int(hyper["epochs"])
        self._doing(f"training on {self.task.samples} samples ({epochs} epoch{'s' if epochs != 1 else ''})", round=r)
        t0 = int(time.time())
        new, update, record = local_train(self.task.new_model(), base, self.task.X_train, self.task.y_train,
                                          epochs=int(hyper["epochs"]), lr=float(hyper["lr"]),
                                          batch_size=int(hyper["batch_size"]), optimizer=hyper["optimizer"],
                                          mu=float(hyper["mu"]), seed=int(hyper["seed"]) * 1000 + r)
        meta_extra: dict[str, Any] = {}
        if spec["dp"]["enabled"]:
            d = spec["dp"]
            cfg = dpmod.DPConfig(clip_norm=d["clip_norm_milli"] / 1000, noise_multiplier=d["noise_multiplier_milli"] / 1000,
                                 delta=10.0 ** -d["delta_exp"])
            update = dpmod.privatize(update, cfg, np.random.default_rng())
            eps_now = dpmod.epsilon(cfg, r) if cfg.noise_multiplier > 0 else float("inf")
            eps_before = dpmod.epsilon(cfg, r - 1) if r > 1 and cfg.noise_multiplier > 0 else 0.0
            meta_extra["dp_epsilon_milli"] = int(min(eps_now - eps_before, 1e9) * 1000)
        n = self.task.samples
        if spec["privacy"] == "secure":
            headroom = max(1, len(rec["participants"]))
            enc = fixedpoint.encode_weighted(update, n, headroom=headroom)
            ctx = f"{self.job_id}|{r}".encode()
            keys = self._registered_keys(report)
            assert priv is not None
            seeds = {m: secagg.pairwise_seed(priv, bytes.fromhex(keys[m]), ctx)
                     for m in rec["participants"] if m != self.msp}
            words = secagg.mask_update(enc, self.msp, seeds)
        else:
            words = fixedpoint.encode(update)
        payload = np.asarray(words, dtype="<u4").tobytes()
        training = {"start": t0, "end": max(t0, int(record["end"])), "epochs": record["epochs"],
                    "iterations": record["iterations"],
                    "loss_per_epoch": [int(round(x * 1e6)) for x in record["loss_per_epoch"]],
                    "data_fingerprint": record["data_fingerprint"]}
        local = evaluate(vector_to_model(self.task.new_model(), new), self.task.X_val, self.task.y_val)
        metrics = {"local_val_accuracy_milli": int(round(local["accuracy"] * 1000)),
                   "train_loss_micro": training["loss_per_epoch"][-1]}
        meta = update_meta(payload, self.task.facts["shape_digest"], n, training, metrics,
                           meta_extra.get("dp_epsilon_milli"))
        return meta, payload, float(record["loss_per_epoch"][-1])

    @staticmethod
    def _registered_keys(report: dict) -> dict[str, str]:
        """Registered X25519 public keys of the round (hex), from the round report."""
        return {m: p["public_key"] for m, p in report["participants"].items() if p.get("public_key")}

    def _collecting(self, job: dict, rec: dict, report: dict) -> None:
        r = rec["round"]
        parts = report["participants"]
        submitted = {m for m, p in parts.items() if p.get("update")}
        if (self.msp in rec["participants"] and self.msp not in submitted and ("submit", r) not in self._done_local
                and time.time() <= rec["deadlines"]["submission"]):
            self._train_and_submit(job, rec, report)
            return
        everyone = submitted >= set(rec["participants"])
        if not everyone and time.time() <= rec["deadlines"]["submission"]:
            self._doing(f"waiting for updates ({len(submitted)}/{len(rec['participants'])})", round=r)
            return
        dropped = sorted(set(rec["participants"]) - submitted)
        if dropped and rec["privacy"] == "secure":
            mine = parts.get(self.msp, {})
            if self.msp in submitted and not mine.get("revealed_for"):
                priv = self._round_key(r, create=False)
                keys = self._registered_keys(report)
                if priv is not None and all(d in keys for d in dropped):
                    ctx = f"{self.job_id}|{r}".encode()
                    seeds = {d: secagg.pairwise_seed(priv, bytes.fromhex(keys[d]), ctx) for d in dropped}
                    if self._try("reveal_seeds", lambda: self.client.reveal_seeds(self.job_id, r, seeds)) is not None:
                        self._note("seeds revealed", round=r, dropped=",".join(dropped))
                return
            if not all(parts.get(s, {}).get("revealed_for") for s in submitted):
                return
        if rec["leader"] != self.msp and time.time() <= rec["deadlines"]["submission"]:
            return  # the contract lets only the leader aggregate early
        if self._due(("aggregate", r), rec["leader"]):
            out = self._try("aggregate", lambda: self.client.aggregate(self.job_id, r))
            if out is not None:
                self._note("aggregated", round=r, state=out.value["state"], dropped=",".join(dropped) or "-")

    def _aggregated(self, job: dict, rec: dict, report: dict) -> None:
        assert self.task is not None
        r = rec["round"]
        parts = report["participants"]
        me = parts.get(self.msp, {})
        expected = self._expected(job, rec)
        if me.get("vote") is None and self.msp in expected and ("vote", r) not in self._done_local:
            if time.time() > rec["deadlines"]["approval"]:
                self._done_local.add(("vote", r))
                return
            self._doing("checking and evaluating the aggregate", round=r)
            try:
                cand, digest = self._candidate(rec)
            except AggregateMismatch as exc:
                self._vote_no_unverified(r, exc)
                return
            self.store.put_model(cand)
            base = self._model(rec["base_hash"], rec["base_version"])
            m_new = evaluate(vector_to_model(self.task.new_model(), cand), self.task.X_val, self.task.y_val)
            m_old = evaluate(vector_to_model(self.task.new_model(), base), self.task.X_val, self.task.y_val)
            ok = bool(np.isfinite(m_new["loss"])) and m_new["accuracy"] >= m_old["accuracy"] - MAX_ACCURACY_DROP
            metrics = {"val_accuracy_milli": int(round(m_new["accuracy"] * 1000)),
                       "val_loss_micro": int(round(min(m_new["loss"], 1e6) * 1e6)) if np.isfinite(m_new["loss"]) else -1,
                       "val_f1_milli": int(round(m_new["f1"] * 1000)), "val_samples": int(len(self.task.y_val))}
            out = self._try("vote", lambda: self.client.vote(self.job_id, r, ok, digest if ok else None, metrics))
            self._done_local.add(("vote", r))
            if out is not None:
                self._note("voted", round=r, approve=ok, val_accuracy=round(m_new["accuracy"], 4),
                           model=digest[:12])
            return
        votes = {m: p["vote"] for m, p in parts.items() if p.get("vote")}
        num, den = rec["quorum"]
        total = sum(rec["stakes"].values())
        by_hash: dict[str, int] = {}
        for m, v in votes.items():
            if v["approve"]:
                by_hash[v["model_hash"]] = by_hash.get(v["model_hash"], 0) + rec["stakes"].get(m, 0)
        decided = any(s * den >= num * total for s in by_hash.values()) or set(votes) >= expected
        if not decided:
            self._doing(f"waiting for votes ({len(set(votes) & expected)}/{len(expected)})", round=r)
        if decided or time.time() > rec["deadlines"]["approval"]:
            if self._due(("finalize", r), rec["leader"]):
                out = self._try("finalize_round", lambda: self.client.finalize_round(self.job_id, r))
                if out is not None:
                    self._note("round closed", round=r, state=out.value.get("state"),
                               version=out.value.get("version"))

    def _vote_no_unverified(self, r: int, exc: AggregateMismatch) -> None:
        """The candidate cannot be verified here: say so loudly and vote no (never approve unchecked bytes)."""
        self._problem(logging.ERROR, f"{exc}; voting NO in round {r}")
        out = self._try("vote", lambda: self.client.vote(self.job_id, r, False, None, {"aggregate_verified": 0}))
        self._done_local.add(("vote", r))
        if out is not None:
            self._note("voted", round=r, approve=False, reason="aggregate does not match the ledger's hash")

    def _finalized(self, rec: dict) -> None:
        """Keep the finalized version's parameters locally (computed from the aggregate, hash-checked)."""
        v = rec.get("version")
        if v is None or ("stored", v) in self._done_local:
            return
        ver = self.client.get_version(self.job_id, v)
        if not self.store.has(ver["model_hash"]):
            try:
                cand, digest = self._candidate(rec)
            except Rejected as exc:
                raise ArtifactError(f"version {v} cannot be rebuilt here: {exc.message}") from None
            if digest != ver["model_hash"]:
                raise ArtifactError(f"version {v}: the aggregate gives {digest[:12]}…, the ledger says "
                                    f"{ver['model_hash'][:12]}…")
            self.store.put_model(cand)
        self._done_local.add(("stored", v))
        self._note("version stored", version=v, model=ver["model_hash"][:12])

    # ---- the loop
    def _load_job(self) -> dict:
        """The job record; an id this peer still does not know after ``job_wait`` s is a :class:`NodeError`."""
        if self._started is None:
            self._started = time.monotonic()
        try:
            return self.client.get_job(self.job_id)
        except Rejected as exc:
            if exc.status == 404 and self.task is None and time.monotonic() - self._started >= self.opt.job_wait:
                raise NodeError(f"job {self.job_id!r} does not exist on the ledger ({exc.message})") from None
            raise

    def _join(self, job: dict) -> None:
        """Check this org takes part in the job and build its training task (once)."""
        parts = job_participants(job)
        if parts is not None and self.msp not in parts:
            raise NodeError(f"{self.msp} is not a participant of job {self.job_id} (participants: "
                            f"{', '.join(parts)}); this node has nothing to do")
        try:
            self.task = task_for(job, self.msp)
        except TaskError as exc:
            raise NodeError(f"job {self.job_id}: {exc}") from None
        self._note("joined", participants=",".join(parts or sorted(self.task.hyper["shards"])),
                   samples=self.task.samples, validation=len(self.task.y_val))

    def step(self) -> bool:
        """One look at the ledger and at most one duty; False once the job is over."""
        job = self._load_job()
        if self.task is None:
            self._join(job)
        r = job["current_round"]
        rec = self.client.get_round(self.job_id, r) if r else None
        self.progress("state", {"round": r, "rounds": job["spec"]["rounds"], "state": rec["state"] if rec else "-",
                                "leader": rec["leader"] if rec else "-"})
        if rec is not None and rec["state"] in TERMINAL:
            if rec["state"] == "finalized":
                self._finalized(rec)
        if job["status"] != "active":
            return False
        if rec is None or rec["state"] in TERMINAL:
            first = (job_participants(job) or sorted(job["spec"]["hyperparams"]["shards"]))[0]
            leader = rec["leader"] if rec else first
            self._doing("opening the next round")
            self._open_next(job, leader)
            return True
        if self.opt.stop_after_round == r and rec["state"] == self.opt.stop_in_state:
            raise NodeStopped(f"stopping in round {r} ({rec['state']}) as asked")
        report = self.client.round_report(self.job_id, r)
        if rec["state"] == "open":
            if self._due(("start_reg", r), rec["leader"]):
                if self._try("start_registration", lambda: self.client.start_registration(self.job_id, r)) is not None:
                    self._note("registration started", round=r)
        elif rec["state"] == "registration":
            self._registration(job, rec, report)
        elif rec["state"] == "collecting":
            self._collecting(job, rec, report)
        elif rec["state"] == "aggregated":
            self._aggregated(job, rec, report)
        self._expire_if_stuck(rec)
        return True

    def _expire_if_stuck(self, rec: dict) -> None:
        """Liveness: a round still in a state whose deadline passed (plus the grace) is failed with
        ``expire_round``; the contract refuses (409) while the normal duty can still move it on."""
        if time.time() <= state_deadline(rec) + self.opt.grace + 1:   # the contract's own deadline rule
            return
        key = ("expire", rec["round"], rec["state"])
        last = self._seen.get(key)
        if last is not None and time.monotonic() - last < max(5.0, self.opt.grace):
            return
        self._seen[key] = time.monotonic()
        out = self._try("expire_round", lambda: self.client.expire_round(self.job_id, rec["round"]))
        if out is not None:
            self._note("round expired", round=rec["round"], state=rec["state"], reason=out.value.get("reason"))

    def _listen(self) -> None:
        """Wake the loop on every contract event of this job (reconnects are the stream's job)."""
        if self.events is None:
            return
        try:
            for ev in self.events:
                if self._stop.is_set():
                    return
                try:
                    body = json.loads(ev.payload)
                except ValueError:
                    continue
                if body.get("job_id") == self.job_id:
                    self._wake.put(ev.event_name)
        except Exception as exc:  # noqa: BLE001 - the tick keeps the node going without events
            if not self._stop.is_set():
                log.warning("%s: event stream ended (%s); continuing on the tick", self.msp, type(exc).__name__)

    def safe_step(self) -> bool:
        """:meth:`step`, surviving what a running node must survive (logged, retried on the next tick);
        :class:`NodeError` and :class:`NodeStopped` still end the node. False once the job is over."""
        try:
            return self.step()
        except TransientRefusal as exc:
            self._problem(logging.WARNING, f"{exc}; retrying on the next tick")
        except Rejected as exc:   # a read refused (e.g. 503 private data not here yet)
            level = logging.WARNING if is_transient(exc) else logging.ERROR
            self._problem(level, f"{exc.function} refused: {exc.message} (status {exc.status or 'none'}); "
                                 "retrying on the next tick")
        except ArtifactError as exc:
            # a model or aggregate that does not check out is never used; loud, and retried
            self._problem(logging.ERROR, f"{exc}; not used, retrying on the next tick")
        except GatewayError as exc:
            # peer briefly unavailable, a commit timed out or was invalidated: retry on the tick
            self._problem(logging.WARNING, f"{exc}; retrying on the next tick")
        return True

    def run(self, timeout: float | None = None) -> bool:
        """Follow the job until it completes (True) or :meth:`stop` is called (False); TimeoutError once
        ``timeout`` seconds pass."""
        listener = threading.Thread(target=self._listen, daemon=True, name=f"events-{self.msp}")
        listener.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"{self.msp}: job {self.job_id} not finished after {timeout:.0f}s")
                if not self.safe_step():
                    self._note("job complete")
                    return True
                try:
                    self._wake.get(timeout=self.opt.tick)
                    while not self._wake.empty():
                        self._wake.get_nowait()
                except queue.Empty:
                    pass
        finally:
            self._stop.set()
            close = getattr(self.events, "close", None)
            if close:
                close()
        return False

    def stop(self) -> None:
        self._stop.set()
        self._wake.put("stop")
