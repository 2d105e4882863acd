"""One organization's training node: driven by the contract's events, no coordinator.

The node reads its job and current round once, then keeps its view current from the events' own
payloads (``view``) and, after every event or a one-second tick, does the duty the round's phase
(``fedfabric_protocol.deadlines.phase``) asks of this org:

=============  =================================================================================
phase          duty
=============  =================================================================================
registering    register a fresh round key (round 1, or a round that opened without enough keys)
starting       start the round (leader first)
submitting     train from the base version, privatize, encode, mask, submit (``fl.recipe``)
revealing      reveal the pairwise seeds with participants left out (secure mode, survivors)
voting         compute the aggregate itself from the others' payloads (its peer's private data, or
               their nodes' exchange), evaluate the candidate on its own validation data, vote --
               with its fresh key for the next round in the same transaction
closing        finalize the round, which opens the next one (leader first)
=============  =================================================================================

"Leader first": the round's stake-drawn leader acts at once, others only once the duty has been due
for the grace period, so a crashed leader cannot stall the consortium and duplicates are rare. An
org that is not a participant of the current round registers its key for the next one (rejoin).

What a running node survives (logged, retried on the next tick): an unreachable peer, a commit that
timed out or was invalidated, a transient refusal (5xx such as private data not on this peer yet),
a local artifact that does not check out (rebuilt from the ledger). A final refusal of one duty is
logged and left to the round's deadlines. What stops it: :class:`NodeError` (unknown job, not a
participant, a recipe this machine cannot follow, a trainer that fails with a ``TaskError``, e.g. a
Flower client answering what the node cannot use). It exits when the job completes.

The trainer is the job's recipe on the org's shard by default, or any ``fl.recipe.Trainer`` the
``recipe_for`` factory builds (``fl.flower.FlowerRecipe``: an org's Flower client). What the node did
is counted in its ``metrics`` (``node.metrics``: rounds, duty and phase durations, bytes, ledger
writes, retries, the last problem), which the CLI serves with ``--metrics-port``.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from fedfabric_protocol import aggregate, codec, deadlines, optimizers
from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.records import Ballot, Result
from fedfabric_protocol.spec import JobSpec
from fedfabric_protocol.states import Exchange, JobStatus, Phase, Privacy, RoundState
from fedfabric_protocol.tally import VoteWeight, tally

from ..artifacts import ArtifactError, ArtifactStore, model_hash
from ..client import FedFabricClient, Rejected
from ..fl import fixedpoint
from ..fl.recipe import Recipe, Trainer
from ..fl.task import TaskError, task_for
from ..ledger import GatewayError
from . import exchange
from .keys import RoundKeys
from .metrics import NodeMetrics
from .versions import ModelBook
from .view import RoundView

log = logging.getLogger("fedfabric.node")

TRANSIENT_STATUSES = (502, 503, 504)   # "not available on this peer" and the like: try again later
REPEAT_LOG_S = 30.0                    # the same problem is logged again (at its level) at most this often
UNREACHABLE_GRACE_S = 10.0             # a node that cannot be reached this long after voting opened is left out
FINISH_ATTEMPTS = 10                   # ticks a node tries to hold the final version before it stops anyway
CONFLICT_RETRIES = 30                  # a submission or ballot refused with 409 is sent again this often at most
DUTY_OF = {"register": "register", "start_round": "start", "submit_update": "submit", "reveal_seeds": "reveal",
           "vote": "vote", "finalize_round": "finalize"}   # ledger write -> the duty it is (node metrics)


@dataclass
class NodeOptions:
    grace: float = 4.0            # seconds a non-leader waits before doing a leader's duty
    tick: float = 1.0             # wake-up interval when no event arrives
    job_wait: float = 10.0        # seconds an unknown job id is waited for (this peer may lag) before giving up
    resync: float = 20.0          # seconds without any event before the round is read again


@dataclass(frozen=True)
class ExchangeSettings:
    """Where this node serves its payloads to other members' nodes, and its TLS identity."""

    bind: str
    endpoint: str
    tls: exchange.NodeTls


class NodeError(Exception):
    """This node cannot follow the job at all (unknown job, org not a participant, unusable recipe)."""


class TransientRefusal(Exception):
    """A ledger write refused for a reason that may pass (status 5xx, endorsement hiccup): retry later."""

    def __init__(self, what: str, exc: Rejected) -> None:
        super().__init__(f"{what} refused for now: {exc.message} (status {exc.status or 'none'})")
        self.rejected = exc


def is_transient(exc: Rejected) -> bool:
    """A refusal worth retrying: no contract status (endorsement/commit hiccup) or a 50x 'not now'."""
    return exc.status is None or exc.status in TRANSIENT_STATUSES


RecipeFactory = Callable[[JobSpec, str], Trainer]   # (the job's spec, the org's MSP id) -> that org's trainer


def _known(n: Optional[int]) -> Any:
    return "-" if n is None else n


def default_recipe(spec: JobSpec, msp_id: str) -> Recipe:
    """The job's own recipe on the org's shard of the job's dataset."""
    return Recipe(spec, task_for(spec, msp_id))


class OrgNode:
    """The training node of ``msp_id`` for one job; ``recipe_for`` builds its trainer once the job is read
    (default: :func:`default_recipe`); ``metrics`` are what it counts (serve them with
    :meth:`NodeMetrics.serve`)."""

    def __init__(self, client: FedFabricClient, msp_id: str, job_id: str, workdir: Path,
                 options: Optional[NodeOptions] = None, events: Any = None,
                 progress: Optional[Callable[[str, dict], None]] = None,
                 exchange_settings: Optional[ExchangeSettings] = None,
                 recipe_for: Optional[RecipeFactory] = None, metrics: Optional[NodeMetrics] = None) -> None:
        self.client, self.msp, self.job_id = client, msp_id, job_id
        self.recipe_for = recipe_for or default_recipe
        self.metrics = metrics or NodeMetrics(msp_id, job_id)
        self.dir = Path(workdir)
        self.store = ArtifactStore(self.dir / "artifacts")
        self.keys = RoundKeys(self.dir / "keys" / job_id, job_id, msp_id)
        self.opt = options or NodeOptions()
        self.events = events
        shown = progress or (lambda what, info: None)

        def report(what: str, info: dict) -> None:   # the status line and the metrics see the same reports
            self.metrics.observe(what, info)
            shown(what, info)

        self.progress = report
        self.net = exchange_settings
        self.spec: Optional[JobSpec] = None
        self.recipe: Optional[Trainer] = None
        self.book: Optional[ModelBook] = None
        self._zero_hash: Optional[str] = None
        self.view: Optional[RoundView] = None
        self.status = JobStatus.ACTIVE
        self._server: Optional[exchange.ExchangeServer] = None
        self._events: "queue.Queue[tuple[str, dict]]" = queue.Queue()
        self._stop = threading.Event()
        self._policy_moved = threading.Event()
        self._seen: dict[tuple, float] = {}
        self._done: set[tuple] = set()
        self._payloads: dict[str, bytes] = {}       # this round's verified payloads, by org
        self._unusable: dict[str, str] = {}         # this round's orgs whose payload cannot be used, and why
        self._mine: dict[int, tuple[dict, bytes]] = {}
        self._base_vec: Optional[tuple[str, np.ndarray]] = None
        self._finishing: Optional[int] = None       # attempts at holding the final version once the job completed
        self._problems: dict[str, float] = {}
        self._last_event = time.monotonic()
        self._conflict = False                      # the last write was refused with 409
        self._conflicts: dict[tuple, int] = {}      # 409s per own duty, see _settled
        self._ballot: Optional[tuple[int, Ballot]] = None   # this round's ballot, as computed once

    # ---- small helpers
    def _note(self, what: str, **info: Any) -> None:
        log.info("%s %s %s", self.msp, what, " ".join(f"{k}={v}" for k, v in info.items()))
        rec = {"t": time.time(), "org": self.msp, "job": self.job_id, "what": what, **info}
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f"{self.job_id}.log.jsonl", "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.progress(what, info)

    def _doing(self, text: str, **info: Any) -> None:
        self.progress("doing", {"text": text, **info})

    def _problem(self, level: int, text: str) -> None:
        """Log ``text`` at ``level`` unless the same text was logged there in the last REPEAT_LOG_S."""
        self.metrics.problem(level, text)
        now = time.monotonic()
        if len(self._problems) > 256:
            self._problems.clear()
        if now - self._problems.get(text, -REPEAT_LOG_S) >= REPEAT_LOG_S:
            self._problems[text] = now
            log.log(level, "%s: %s", self.msp, text)
            self.progress("problem", {"text": text, "level": logging.getLevelName(level)})
        else:
            log.debug("%s: %s", self.msp, text)

    def _due(self, key: tuple, leader: str) -> bool:
        """Leader: now. Others: once ``key`` has been pending for the grace period."""
        first = self._seen.setdefault(key, time.monotonic())
        return leader == self.msp or time.monotonic() - first >= self.opt.grace

    def _try(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run a ledger write. 409 (someone did it first, or not yet) is not an error; a transient refusal
        raises :class:`TransientRefusal` (retried next tick); a final one is logged and None returned."""
        self._conflict = False
        try:
            with self.metrics.duty(DUTY_OF.get(what, what)):
                out = fn()
        except Rejected as exc:
            if exc.status == 409:
                self.metrics.transaction(what, "conflict")
                log.debug("%s %s: %s", self.msp, what, exc.message)
                self._conflict = True
                return None
            if is_transient(exc):
                self.metrics.transaction(what, "transient")
                raise TransientRefusal(what, exc) from None
            self.metrics.transaction(what, "refused")
            self._problem(logging.ERROR, f"{what} refused by the contract: {exc.message} (status {exc.status})")
            return None
        self.metrics.transaction(what, "ok")
        return out

    def _settled(self, key: tuple) -> bool:
        """After a write of this org's own duty (``key``: ("submit" | "vote", round)): is it done? Yes once
        it committed, or was refused for good; a 409 is sent again (on the next event or tick, up to
        :data:`CONFLICT_RETRIES` times): an endorser whose peer has not committed the latest block yet
        says "not yet" ("round 2 is collecting", 9 of 10 submitted) with the status of "done already".
        Once the org's record is on its own peer, the view says so and the duty is not due again."""
        if not self._conflict:
            return True
        self._conflicts[key] = self._conflicts.get(key, 0) + 1
        return self._conflicts[key] > CONFLICT_RETRIES

    @staticmethod
    def _now() -> int:
        return int(time.time())

    # ---- joining and following
    def _load_job(self, started: float) -> dict:
        while True:
            try:
                return self.client.get_job(self.job_id)
            except Rejected as exc:
                if exc.status != 404 or time.monotonic() - started >= self.opt.job_wait:
                    if exc.status == 404:
                        raise NodeError(f"job {self.job_id!r} does not exist on the ledger ({exc.message})") from None
                    raise
            if self._stop.wait(0.5):
                raise NodeError("stopped while waiting for the job")

    def _join(self, job: dict) -> None:
        spec = JobSpec.from_dict(job["spec"])
        if self.msp not in spec.participants:
            raise NodeError(f"{self.msp} is not a participant of job {self.job_id} (participants: "
                            f"{', '.join(spec.participants)}); this node has nothing to do")
        try:
            recipe = self.recipe_for(spec, self.msp)
        except TaskError as exc:
            raise NodeError(f"job {self.job_id}: {exc}") from None
        self.spec, self.recipe = spec, recipe
        self.book = ModelBook(self.client, self.job_id, self.store, recipe.initial, self._fetch_blob)
        if spec.exchange is Exchange.NODES and self.net is None:
            raise NodeError(f"job {self.job_id} exchanges payloads node to node ({spec.model.num_params} "
                            f"parameters > {spec.endorsed_max_params}); this node has no exchange endpoint")
        if self.net is not None:   # serve our payloads to the others' nodes (faster than their peers' copies)
            self._server = exchange.ExchangeServer(self.store, self.net.bind, self.net.tls,
                                                   on_sent=lambda n: self.metrics.sent("exchange", n)).start()
            host, _, port = self.net.endpoint.rpartition(":")
            if port == "0":   # bound to a free port: announce the one the system chose
                self.net = ExchangeSettings(self.net.bind, f"{host}:{self._server.port}", self.net.tls)
        self._note("joined", participants=",".join(spec.participants), samples=_known(recipe.samples),
                   validation=_known(recipe.validation_samples), exchange=spec.exchange.value)

    def sync(self) -> None:
        """Read the job and its current round once (start-up, or after a gap in the events)."""
        job = self._load_job(time.monotonic())
        if self.spec is None:
            self._join(job)
        if job["status"] == JobStatus.COMPLETED.value and self._finishing is None:
            self._finishing = 0
        report = self.client.round_report(self.job_id, job["current_round"])
        self._set_view(RoundView.from_report(report))
        self._last_event = time.monotonic()

    def _set_view(self, view: RoundView) -> None:
        if self.view is None or view.round != self.view.round:
            self._payloads, self._unusable = {}, {}
        self.view = view
        self.progress("state", {"round": view.round, "rounds": self.spec.rounds if self.spec else "?",
                                "state": view.rec.state.value, "leader": view.rec.leader})

    def on_event(self, name: str, body: dict) -> None:
        """Apply one event of this job to the view."""
        assert self.view is not None
        self._last_event = time.monotonic()
        if body.get("policy"):
            self._policy_moved.set()
        r = body.get("round")
        if isinstance(r, int) and r > self.view.round + 1:
            self.sync()   # we missed a round: read it again
            return
        if name in ("RoundFinalized", "JobCompleted") and body.get("version") and r == self.view.round:
            self._keep_version(body["version"], body["model_hash"])
        nxt = self.view.apply(name, body)
        if name == "JobCompleted" and r == self.view.round:
            self._finishing = 0
        if nxt is not None or (name in ("RoundFinalized", "RoundFailed", "JobCompleted") and r == self.view.round):
            self._note("round closed", round=r, state=body.get("state"), version=body.get("version") or "-",
                       reason=body.get("reason") or "-")
        if nxt is not None:
            self._set_view(RoundView(nxt))

    def _keep_version(self, version: int, digest: str) -> None:
        if self.store.has(digest):
            self._note("version stored", version=version, model=digest[:12])

    # ---- duties
    def step(self) -> None:
        """At most one duty of this org in the current round."""
        assert self.view is not None and self.spec is not None
        v, rec = self.view, self.view.rec
        if rec.state.closed:
            return
        ph = deadlines.phase(rec, v.activity(), self._now())
        self.progress("state", {"round": v.round, "rounds": self.spec.rounds, "state": ph.value, "leader": rec.leader})
        if rec.state is RoundState.REGISTRATION:
            if self.msp in rec.stakes and self.msp not in v.registered and ph is Phase.REGISTERING \
                    and ("register", v.round) not in self._done:
                self._register(v.round)
            elif ph is Phase.STARTING and self._due(("start", v.round), rec.leader):
                if self._try("start_round", lambda: self.client.start_round(self.job_id, v.round)) is not None:
                    self._note("round started", round=v.round)
            return
        if self.msp not in rec.participants and self.msp not in v.next_registered and v.round < self.spec.rounds \
                and self.msp not in v.votes and ("register", v.round + 1) not in self._done:
            self._register(v.round + 1)
            return
        if ph is Phase.SUBMITTING:
            if self.msp in rec.participants and self.msp not in v.updates and ("submit", v.round) not in self._done:
                self._submit()
            else:
                self._doing(f"waiting for updates ({len(v.updates)}/{len(rec.participants)})", round=v.round)
        elif ph in (Phase.REVEALING, Phase.VOTING) or (ph is Phase.CLOSING and self._undecided()):
            # voting; or every submitter voted but the pending ballots (ours too, perhaps) decide the quorum
            if self.msp in rec.stakes and self.msp not in v.votes and ("vote", v.round) not in self._done:
                self._vote()
            else:
                self._doing(f"waiting for votes ({len(v.votes)}/{len(rec.stakes)})", round=v.round)
        elif ph is Phase.CLOSING and self._due(("close", v.round), rec.leader):
            # endorsers recompute the optimizer step too: they need the base state (its hash is on the ledger)
            state = self._base_state() if self.spec.exchange is Exchange.ENDORSED else None
            out = self._try("finalize_round", lambda: self.client.finalize_round(self.job_id, v.round, state))
            if out is not None:
                self._note("round finalized" if out.value["state"] == "finalized" else "round failed",
                           round=v.round, version=(out.value.get("outcome") or {}).get("version") or "-")

    def _undecided(self) -> bool:
        """The protocol's tally of the ballots seen so far leaves the outcome open (see ``deadlines.undecided``)."""
        v = self.view
        if deadlines.closing_reason(v.rec, v.activity(), self._now()) is not None:
            return False
        weights = {m: VoteWeight(b["approve"], b.get("result_key")) for m, b in v.votes.items()}
        return deadlines.undecided(v.rec, tally(v.rec.stakes, v.rec.quorum, weights), self._now())

    def _register(self, r: int) -> None:
        pub = self.keys.create(r)
        self._doing("registering a fresh round key", round=r)
        done = self._try("register", lambda: self.client.register(self.job_id, r, pub)) is not None
        self._done.add(("register", r))   # refused for good (409 included): the round's deadlines decide
        if done:
            self._note("registered", round=r)
            if r == self.view.round:
                self.view.registered.add(self.msp)
            else:
                self.view.next_registered.add(self.msp)

    def _base(self) -> np.ndarray:
        """The round's base model (verified; cached for the round)."""
        rec = self.view.rec
        if self._base_vec is None or self._base_vec[0] != rec.base_hash:
            self._base_vec = (rec.base_hash, self.book.get(rec.base_version, rec.base_hash))
        return self._base_vec[1]

    def _base_state(self) -> Optional[bytes]:
        """The server optimizer's state after the round's base version (None: the zero state, or no optimizer)."""
        rec, opt, n = self.view.rec, self.spec.server_optimizer, self.spec.model.num_params
        if opt is None or rec.base_state_hash == self._zero_state_hash():
            return None
        return self.book.state(rec.base_version, rec.base_state_hash, opt.state_bytes(n))

    def _zero_state_hash(self) -> str:
        if self._zero_hash is None:
            self._zero_hash = self.spec.server_optimizer.initial_state_hash(self.spec.model.num_params)
        return self._zero_hash

    def _submit(self) -> None:
        v, rec, spec = self.view, self.view.rec, self.spec
        r = v.round
        if r not in self._mine:   # a retried submission resends the same bytes (same DP noise draw)
            seeds = None
            if spec.privacy is Privacy.SECURE:
                if self.keys.private(r) is None:
                    self._note("cannot submit: the round key was lost (this org counts as dropped)", round=r)
                    self._done.add(("submit", r))
                    return
                seeds = self.keys.seeds(r, rec.public_keys, rec.participants)
            self._doing(f"training on {self.recipe.samples} samples" if self.recipe.samples else "training", round=r)
            with self.metrics.duty("train"):
                lu = self.recipe.train(self._base(), r)
            try:
                words = self.recipe.encode(lu, len(rec.participants), seeds)
            except fixedpoint.FixedPointError as exc:
                self._problem(logging.ERROR, f"round {r}: the update cannot be encoded ({exc}); "
                                             "this org sits this round out")
                self._done.add(("submit", r))
                return
            payload = codec.pack(words)
            self.store.put(payload)
            endpoint = self.net.endpoint if self.net is not None else None
            self._mine = {r: (self.recipe.meta(lu, payload, endpoint), payload)}
        meta, payload = self._mine[r]
        self._doing("submitting the update", round=r)
        onchain = payload if spec.exchange is Exchange.ENDORSED else None
        out = self._try("submit_update", lambda: self.client.submit_update(self.job_id, r, meta, onchain))
        if not self._settled(("submit", r)):
            return
        self._done.add(("submit", r))
        if out is not None:
            self.metrics.sent("submission", len(onchain or b""))
            v.updates[self.msp] = {k: meta.get(k) for k in ("sha256", "sample_count", "size", "endpoint")}
            self._payloads[self.msp] = payload
            self._note("update submitted", round=r, samples=meta["sample_count"], sha256=meta["sha256"][:12])

    # ---- computing the round's result
    def _payload(self, m: str) -> Optional[bytes]:
        """``m``'s verified payload, or None with ``_unusable[m]`` saying why; raises to retry later.

        Payloads on the peers: this node's store, else its peer (which checks the hash; a copy that does
        not match is an error to retry, never a reason to leave an org out). Node to node: the store for
        its own (a corrupted own payload cannot be replaced), else the org's node."""
        v = self.view
        if m in self._payloads:
            return self._payloads[m]
        digest = v.updates[m]["sha256"]
        data = None
        if self.store.has(digest):
            try:
                data = self.store.get(digest)
            except ArtifactError as exc:
                if self.spec.exchange is Exchange.NODES and m == self.msp:
                    self._unusable[m] = str(exc)
                    return None
        if data is None and self.spec.exchange is Exchange.ENDORSED and m != self.msp and self.net is not None \
                and v.updates[m].get("endpoint"):
            try:   # straight from that org's node; its peer's copy (authoritative, slower) if that fails
                data = self._fetch(v.updates[m]["endpoint"], digest, m, self.spec.model.num_params * 4, timeout=10.0)
            except exchange.FetchError as exc:
                log.debug("%s: %s; reading it from this peer", self.msp, exc)
        if data is None and self.spec.exchange is Exchange.ENDORSED:
            data = self.client.get_update(self.job_id, v.round, m)   # 503 until this peer pulled it: retry
            self.metrics.received("peer", len(data))
            if codec.sha256_hex(data) != digest:
                raise ArtifactError(f"the bytes of {m}'s update on this peer do not match its recorded hash")
            self.store.put(data)
        elif data is None and m == self.msp:
            self._unusable[m] = "this node no longer has its own update"
            return None
        elif data is None:
            try:
                data = self._fetch(v.updates[m]["endpoint"], digest, m, self.spec.model.num_params * 4)
            except exchange.CorruptBlob as exc:
                self._unusable[m] = str(exc)
                return None
            except exchange.FetchError as exc:
                opened = self._seen.setdefault(("fetch", v.round, m), time.monotonic())
                if time.monotonic() - opened < UNREACHABLE_GRACE_S:
                    raise ArtifactError(f"{exc}; retrying") from None
                self._unusable[m] = str(exc)
                return None
            self.store.put(data)
        self._payloads[m] = data
        return data

    def _result(self) -> Optional[tuple[Result, np.ndarray]]:
        """(the result this org computed, the candidate model) or None while reveals are still owed."""
        v, rec, spec = self.view, self.view.rec, self.spec
        words = {}
        for m in sorted(v.updates):
            data = self._payload(m)
            if data is not None:
                words[m] = codec.unpack(data, spec.model.num_params)
        for m, why in sorted(self._unusable.items()):
            self._problem(logging.WARNING, f"round {v.round}: leaving {m} out: {why}")
        samples = {m: int(v.updates[m]["sample_count"]) for m in words}
        left_out = sorted(set(rec.participants) - set(words))
        if spec.privacy is Privacy.SECURE:
            if left_out and not self._seeds_revealed(left_out, words):
                return None
            seeds = {}
            for s in sorted(words) if left_out else ():
                got = self.keys.seeds(v.round, rec.public_keys, left_out) if s == self.msp else \
                    self.client.get_revealed_seeds(self.job_id, v.round, s)
                seeds.update({(s, d): got[d] for d in left_out})
            agg = aggregate.secure_aggregate(spec.aggregation, words, samples, seeds, left_out)
        else:
            agg = aggregate.clear_aggregate(spec.aggregation, words, samples, spec.incentives.anomaly_factor)
        self.store.put(agg.data)    # kept and served by hash, like the candidate model
        opt = spec.server_optimizer
        step = optimizers.server_step(opt, agg.words, self._base_state())
        if step.state:
            self.store.put(step.state)   # the next version's optimizer state, served by hash like models
        cand = Recipe.candidate(self._base(), step.words)
        return Result(agg.hash, model_hash(cand), agg.contributors, agg.flagged, step.hash if opt else "",
                      step.state_hash), cand

    def _seeds_revealed(self, left_out: list[str], usable: dict) -> bool:
        """Secure mode with participants left out: reveal ours (once) and wait for every contributor's."""
        v = self.view
        if self.msp in usable and self.msp not in v.reveals and ("reveal", v.round) not in self._done:
            seeds = self.keys.seeds(v.round, v.rec.public_keys, left_out)
            self._doing(f"revealing seeds for {', '.join(left_out)}", round=v.round)
            if self._try("reveal_seeds", lambda: self.client.reveal_seeds(self.job_id, v.round, seeds)) is not None:
                self._note("seeds revealed", round=v.round, left_out=",".join(left_out))
                v.reveals[self.msp] = list(left_out)
            self._done.add(("reveal", v.round))
            return False
        missing = [c for c in usable if not set(left_out) <= set(v.reveals.get(c, ()))]
        if missing and all(c in v.votes for c in missing):
            # they voted without these reveals: they computed with other contributors; ours cannot be completed
            raise ProtocolError(f"{', '.join(missing)} voted without revealing seeds for {', '.join(left_out)}")
        if missing:
            self._doing(f"waiting for seed reveals from {', '.join(missing)}", round=v.round)
            return False
        return True

    def _vote(self) -> None:
        v, spec = self.view, self.spec
        r = v.round
        if self._ballot is not None and self._ballot[0] == r:   # a ballot sent again after a 409
            self._send_ballot(r, self._ballot[1])
            return
        self._doing("computing and evaluating the aggregate", round=r)
        t0 = time.perf_counter()
        try:
            out = self._result()
        except ProtocolError as exc:   # e.g. too few usable updates for the rule: vote no
            out = None
            self._problem(logging.ERROR, f"round {r}: no result can be computed here ({exc.message}); voting no")
            ballot = Ballot(False, None, {"result_computed": 0}, self._next_key(r))
        else:
            if out is None:
                return
            result, cand = out
            if len(result.contributors) < self.view.rec.min_participants:   # the round can only fail: say no
                ballot = Ballot(False, None, {"contributors": len(result.contributors)}, self._next_key(r))
            else:
                self.store.put_model(cand)
                j = self.recipe.judge(cand, self._base())
                ballot = Ballot(j.approve, result, j.metrics, self._next_key(r))
        self.metrics.duties.labels("compute").observe(time.perf_counter() - t0)
        self._ballot = (r, ballot)
        self._send_ballot(r, ballot)

    def _send_ballot(self, r: int, ballot: Ballot) -> None:
        v = self.view
        w = self._try("vote", lambda: self.client.vote(self.job_id, r, ballot))
        if not self._settled(("vote", r)):
            return
        self._done.add(("vote", r))
        if w is not None:
            v.votes[self.msp] = {"approve": ballot.approve, "result_key": ballot.result.key if ballot.result else None}
            if ballot.next_public_key:
                v.next_registered.add(self.msp)
            self._note("voted", round=r, approve=ballot.approve,
                       model=ballot.result.model_hash[:12] if ballot.result else "-",
                       contributors=",".join(ballot.result.contributors) if ballot.result else "-")

    def _next_key(self, r: int) -> Optional[str]:
        if r >= self.spec.rounds or self.msp in self.view.next_registered:
            return None
        return self.keys.create(r + 1).hex()

    def _fetch(self, endpoint: str, digest: str, msp_id: str, max_bytes: int,
               timeout: float = exchange.FETCH_TIMEOUT_S) -> bytes:
        """``exchange.fetch`` from ``msp_id``'s node, its bytes counted in the node's metrics."""
        data = exchange.fetch(endpoint, digest, msp_id, self.net.tls, max_bytes=max_bytes, timeout=timeout)
        self.metrics.received("exchange", len(data))
        return data

    def _fetch_blob(self, digest: str, report: dict, max_bytes: int) -> bytes:
        """A finalized model or optimizer state from any member node that serves it (for catching up), among
        the nodes known from the version's round and from the current round."""
        if self.net is None:
            raise ArtifactError("this node has no exchange identity to fetch from other nodes")
        errors = []
        known = {m: (p.get("update") or {}).get("endpoint") for m, p in report["participants"].items()}
        if self.view is not None:
            known.update({m: u.get("endpoint") for m, u in self.view.updates.items() if u.get("endpoint")})
        for m, ep in sorted(known.items()):
            if ep and m != self.msp:
                try:
                    return self._fetch(ep, digest, m, max_bytes)
                except exchange.CorruptBlob as exc:
                    self._problem(logging.WARNING, f"{exc}; trying another node")
                    errors.append(str(exc))
                except exchange.FetchError as exc:
                    errors.append(str(exc))
        raise ArtifactError(f"no node served {digest[:12]}…: {'; '.join(errors) or 'no endpoints'}")

    # ---- the loop
    def _listen(self) -> None:
        """Queue every contract event of this job (reconnects are the stream's job)."""
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
                if not isinstance(body, dict):
                    continue
                if body.get("policy"):   # stake moved: the endorsing coalition may have to change
                    self._policy_moved.set()
                if body.get("job_id") == self.job_id:
                    self._events.put((ev.event_name, body))
        except Exception as exc:  # noqa: BLE001 - resync on the tick keeps the node going without events
            if not self._stop.is_set():
                log.warning("%s: event stream ended (%s); reading the ledger on the tick", self.msp,
                            type(exc).__name__)

    def _finish(self) -> None:
        """The job completed: hold its final version (rebuilt and verified if need be), then stop. A node
        that cannot get it after a few ticks stops anyway, saying so."""
        self._finishing += 1
        job = self.client.get_job(self.job_id)
        latest = self.client.get_version(self.job_id, job["latest_version"])
        try:
            self.book.get(latest["version"], latest["model_hash"])
        except ArtifactError as exc:
            if self._finishing < FINISH_ATTEMPTS:
                raise
            self._problem(logging.ERROR, f"the job completed but its final version is not here: {exc}")
        self.status = JobStatus.COMPLETED

    def safe_step(self) -> None:
        """:meth:`step`, surviving what a running node must survive (logged, retried on the next tick)."""
        try:
            if self._policy_moved.is_set() and self.client.coalition is not None:
                self._policy_moved.clear()
                self.client.coalition.forget()
            if self._finishing is not None:
                self._finish()
                return
            if time.monotonic() - self._last_event > self.opt.resync:
                self.sync()
            self.step()
        except TransientRefusal as exc:
            self.metrics.retry("transient_refusal")
            self._problem(logging.WARNING, f"{exc}; retrying on the next tick")
        except TaskError as exc:   # the trainer cannot go on (e.g. a Flower client answering nonsense)
            raise NodeError(f"{self.msp}: the trainer failed: {exc}") from None
        except Rejected as exc:   # a read refused (e.g. 503 private data not here yet)
            self.metrics.retry("read_refused")
            level = logging.WARNING if is_transient(exc) else logging.ERROR
            self._problem(level, f"{exc.function} refused: {exc.message} (status {exc.status or 'none'}); "
                                 "retrying on the next tick")
        except ArtifactError as exc:
            self.metrics.retry("artifact")
            self._problem(logging.ERROR, f"{exc}; not used, retrying on the next tick")
        except GatewayError as exc:
            self.metrics.retry("gateway")
            self._problem(logging.WARNING, f"{exc}; retrying on the next tick")

    def _apply_events(self, first: Optional[tuple[str, dict]]) -> None:
        """Apply ``first`` and every event already queued behind it, in order."""
        batch = [first] if first is not None else []
        while True:
            try:
                batch.append(self._events.get_nowait())
            except queue.Empty:
                break
        for name, body in batch:
            try:
                self.on_event(name, body)
            except (Rejected, GatewayError, ArtifactError) as exc:   # a resync that failed: next tick
                self._problem(logging.WARNING, f"could not follow event {name}: {exc}")

    def run(self, timeout: Optional[float] = None) -> bool:
        """Follow the job until it completes (True) or :meth:`stop` is called (False); TimeoutError once
        ``timeout`` seconds pass."""
        listener = threading.Thread(target=self._listen, daemon=True, name=f"events-{self.msp}")
        listener.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self.sync()
            while not self._stop.is_set():
                if self.status is JobStatus.COMPLETED:
                    self._note("job complete")
                    return True
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"{self.msp}: job {self.job_id} not finished after {timeout:.0f}s")
                self.safe_step()
                try:
                    first: Optional[tuple[str, dict]] = self._events.get(timeout=self.opt.tick)
                except queue.Empty:
                    first = None
                self._apply_events(first)
        finally:
            self._stop.set()
            close = getattr(self.events, "close", None)
            if close:
                close()
            self.close()
        return False

    def close(self) -> None:
        """Stop serving payloads to the other nodes."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def stop(self) -> None:
        self._stop.set()
