"""Drive the product chaincode ``fedfabric`` on a real network through the Gateway.

Shared by the live contract tests (``tests/chaincode_live``) and ``benchmarks/ledger_round.py``.

``Consortium(layout)`` opens one Gateway per org (trainer ``User1``, and ``Admin`` for admin-only
writes) with a :class:`fedfabric.client.FedFabricClient` each. :class:`LiveJob` plays whole secure
rounds of protocol v2 the way the orgs' nodes do -- every org submits (in parallel), every org
computes the aggregate (and the server optimizer's step, if the job has one) itself with the
protocol's code and votes with its next round key (in parallel), the leader finalizes -- and
records each phase's time and transactions. Clear-mode jobs submit plain encodings.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

import grpc
import numpy as np

from fedfabric.client import FedFabricClient, Rejected, Written, open_client
from fedfabric.fl import fixedpoint, secagg
from fedfabric.ledger import EndorseError, GatewayError
from fedfabric_protocol import aggregate, codec, optimizers
from fedfabric_protocol.optimizers import optimizer_from_dict
from fedfabric_protocol.records import Ballot, Result
from fedfabric_protocol.rules import rule_from_dict
from fedfabric_protocol.spec import Incentives

CHAINCODE = "fedfabric"
QUORUM = "2/3"
STAKE = 100


def h(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def uid(prefix: str) -> str:
    """A job id no other test (or earlier run on the same network) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def deploy_product(net: Any) -> int:
    """Deploy (or leave deployed) the product chaincode with its stake-weighted policy and collection."""
    from fedfabric.network.deploy import product_deployment
    return net.deploy(product_deployment(net.config))


@dataclass
class Party:
    """One org: its trainer and admin clients on its own peer."""

    org: str
    msp: str
    trainer: FedFabricClient
    admin: FedFabricClient
    gateways: list = field(default_factory=list)

    @property
    def network(self):
        return self.trainer.contract.network

    def height(self) -> int:
        return self.network.qscc().chain_info()["height"]


class Consortium:
    """Gateways and typed clients for every org of a running network (``layout`` of a manager Network)."""

    def __init__(self, layout: Any, retries: int = 120, retry_delay: float = 0.5) -> None:
        self.layout = layout
        self.channel = layout.config.channel
        self.parties: dict[str, Party] = {}
        try:
            for o in layout.config.orgs:
                gw_t, trainer = self.client(o.name, "User1", retries, retry_delay)
                gw_a, admin = self.client(o.name, "Admin", retries, retry_delay)
                self.parties[o.msp_id] = Party(o.name, o.msp_id, trainer, admin, [gw_t, gw_a])
        except BaseException:
            self.close()
            raise

    def client(self, org: str, user: str, retries: int = 120, retry_delay: float = 0.5) -> tuple[Any, FedFabricClient]:
        gw, c = open_client(org, user, config=self.layout.config, run_root=self.layout.root)
        c.retries, c.retry_delay = retries, retry_delay
        return gw, c

    @property
    def msps(self) -> list[str]:
        return sorted(self.parties)

    def first(self) -> Party:
        return self.parties[self.msps[0]]

    def close(self) -> None:
        for p in self.parties.values():
            for gw in p.gateways:
                gw.close()

    def __enter__(self) -> "Consortium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- readiness and synchronisation
    def wait_ready(self, timeout: float = 90.0) -> None:
        """Every org's peer answers queries of the chaincode."""
        for p in self.parties.values():
            p.trainer.wait_ready(timeout)

    def wait_endorsers(self, gateways: Iterable[str] | None = None, targets: Iterable[str] | None = None,
                       timeout: float = 90.0) -> None:
        """The Gateways of ``gateways`` (MSP ids; default all) know the peers of ``targets`` (default
        all) as endorsers of the chaincode.

        After ``up`` a peer may see another org's peer in gossip only ~30 s later (their first
        gossip handshake can happen before both joined the channel; gossip reconnects after its
        reconnect interval). Meanwhile the Gateway picks other endorsers by itself, but a request
        naming the orgs (``endorsing_orgs``) fails with UNAVAILABLE "failed to find any endorsing
        peers for org(s)". Probed with evaluations that target one org each, so nothing is written."""
        from fabshim.contract import METADATA_FN

        deadline = time.monotonic() + timeout
        for m in (sorted(gateways) if gateways is not None else self.msps):
            p = self.parties[m]
            for target in (sorted(targets) if targets is not None else self.msps):
                while True:
                    try:
                        p.trainer.contract.evaluate(METADATA_FN, endorsing_orgs=[target])
                        break
                    except GatewayError as err:
                        if time.monotonic() >= deadline:
                            raise TimeoutError(f"{m}'s Gateway cannot reach {target}'s endorser: {err}") from None
                        time.sleep(0.5)

    def heights(self) -> dict[str, int]:
        return {m: p.height() for m, p in self.parties.items()}

    def wait_synced(self, height: int, timeout: float = 30.0) -> None:
        """Every peer's ledger height reaches ``height`` (i.e. it committed block ``height - 1``)."""
        deadline = time.monotonic() + timeout
        for m, p in self.parties.items():
            while True:
                got = p.height()
                if got >= height:
                    break
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{m}'s peer is at height {got}, expected {height} after {timeout}s")
                time.sleep(0.05)

    def synced(self, w: Written) -> Written:
        """``w`` after every peer committed its block."""
        self.wait_synced(w.block_number + 1)
        return w

    def init(self, quorum: str = QUORUM, stake: int = STAKE) -> bool:
        """init_consortium as org1's admin (every org with ``stake``); False if already initialized.

        Retries while the Gateway cannot find endorsers yet (right after a deploy)."""
        orgs = [{"msp_id": m, "name": self.parties[m].org, "stake": stake} for m in self.msps]
        admin = self.first().admin
        deadline = time.monotonic() + 120
        while True:
            try:
                self.synced(admin.init_consortium(orgs, quorum))
                return True
            except Rejected as exc:
                if exc.status == 409 and "already initialized" in exc.message:
                    return False
                raise
            except EndorseError as err:
                if err.code is not grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)


def eventually(fn: Callable[[], Any], timeout: float = 20.0, poll: float = 0.2,
               retry_on: tuple[type[BaseException], ...] = (Rejected, GatewayError)) -> Any:
    """``fn()`` once it stops raising ``retry_on`` (e.g. a peer still committing)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except retry_on:
            if time.monotonic() >= deadline:
                raise
            time.sleep(poll)


# ---- jobs, payloads and rounds
def secure_job_spec(job_id: str, num_params: int, window_s: int = 60, rounds: int = 3, msps=None, **over: Any) -> dict:
    """A secure FedAvg job over a flat parameter vector (the contract never sees the model itself)."""
    msps = list(msps or ("Org1MSP", "Org2MSP", "Org3MSP"))
    spec = {"job_id": job_id,
            "model": {"arch_id": "flat-vector", "arch_hash": h(f"arch-{num_params}"),
                      "initial_hash": h(f"{job_id}-v0"), "shape_digest": codec.shape_digest([[num_params]]),
                      "num_params": num_params},
            "hyperparams": {"dataset": "breast_cancer", "arch": "logreg", "shards": msps},
            "rounds": rounds, "privacy": "secure", "aggregation": {"rule": "fedavg"}, "quorum": QUORUM,
            "min_participants": 2, "participants": msps,
            "windows": {"registration_s": window_s, "submission_s": window_s, "approval_s": window_s},
            "incentives": {"reward_per_round": 300}}
    spec.update(over)
    return spec


def training_facts(seed: int) -> dict:
    now = int(time.time())
    return {"start": now, "end": now + 1, "epochs": 1, "iterations": 10, "loss_per_epoch": [500_000 + seed],
            "data_fingerprint": h(f"data-{seed}")}


def update_meta(payload: bytes, num_params: int, samples: int, seed: int, endpoint: str | None = None) -> dict:
    meta = {"sha256": h(payload), "size": len(payload), "shape_digest": codec.shape_digest([[num_params]]),
            "sample_count": samples, "training": training_facts(seed), "metrics": {"train_acc_milli": 800 + seed}}
    if endpoint:
        meta["endpoint"] = endpoint
    return meta


def expected_fedavg(encoded: dict[str, np.ndarray], samples: dict[str, int]) -> bytes:
    """Plain FedAvg of the unmasked quantized updates, from first principles (vectorised int64): the
    mod-2^32 sum read as int32, times 1024, over the total sample count, rounded half to even."""
    total_n = sum(samples.values())
    s = np.zeros(len(next(iter(encoded.values()))), dtype=np.int64)
    for enc in encoded.values():
        s += enc.astype(np.int64)
    s %= 1 << 32
    s = np.where(s >= 1 << 31, s - (1 << 32), s) * codec.WEIGHT_SCALE
    q = np.floor_divide(s, total_n)
    rem = s - q * total_n
    q += ((2 * rem > total_n) | ((2 * rem == total_n) & (q % 2 == 1))).astype(np.int64)
    return (q % (1 << 32)).astype("<u4").tobytes()


class Timer:
    def __init__(self, sink: dict[str, float], name: str) -> None:
        self.sink, self.name = sink, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.sink[self.name] = self.sink.get(self.name, 0.0) + time.perf_counter() - self.t0


@dataclass
class RoundRun:
    """What one round left behind, for assertions and measurements."""

    round: int
    writes: dict[str, Written] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    encoded: dict[str, np.ndarray] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    payloads: dict[str, bytes] = field(default_factory=dict)
    result: Optional[Result] = None
    closed: dict = field(default_factory=dict)

    @property
    def first_block(self) -> int:
        return min(w.block_number for w in self.writes.values())

    @property
    def last_block(self) -> int:
        return max(w.block_number for w in self.writes.values())


class LiveJob:
    """One job driven through the Gateway like the orgs' nodes would drive it."""

    def __init__(self, cons: "Consortium", spec: dict) -> None:
        self.cons, self.spec, self.job_id = cons, spec, spec["job_id"]
        self.n = spec["model"]["num_params"]
        self.rule = rule_from_dict(spec["aggregation"])
        self.opt = optimizer_from_dict(spec["server_optimizer"]) if "server_optimizer" in spec else None
        self.opt_state: Optional[bytes] = None     # after the latest version (None: the zero state)
        self.step: Optional[optimizers.Step] = None
        self.keys: dict[tuple[str, int], Any] = {}
        self.pool = ThreadPoolExecutor(max_workers=len(cons.msps))
        self.created: Optional[Written] = None

    def parallel(self, fn: Callable[[str], Written], who: Iterable[str]) -> dict[str, Written]:
        """``fn(msp)`` for every org at once (each on its own Gateway), then wait until every peer committed."""
        futs = {m: self.pool.submit(fn, m) for m in who}
        out = {m: f.result() for m, f in futs.items()}
        self.cons.wait_synced(max(w.block_number for w in out.values()) + 1)
        return out

    def key(self, msp: str, r: int) -> bytes:
        if (msp, r) not in self.keys:
            self.keys[(msp, r)] = secagg.generate_keypair()
        return self.keys[(msp, r)][1]

    def create(self) -> Written:
        self.created = self.cons.synced(self.cons.first().admin.create_job(self.spec))
        return self.created

    def start(self, who: Iterable[str] | None = None) -> RoundRun:
        """Round 1: every org registers its key, then the round starts collecting."""
        run = RoundRun(1)
        who = list(who or self.cons.msps)
        with Timer(run.timings, "register"):
            run.writes.update({f"register:{m}": w for m, w in self.parallel(
                lambda m: self.cons.parties[m].trainer.register(self.job_id, 1, self.key(m, 1)), who).items()})
        with Timer(run.timings, "start"):
            run.writes["start"] = self.cons.synced(self.cons.first().trainer.start_round(self.job_id, 1))
        return run

    def round_record(self, r: int):
        return self.cons.first().trainer.get_round(self.job_id, r)

    def submit(self, run: RoundRun, seed: int = 0, who: Iterable[str] | None = None,
               endpoints: dict[str, str] | None = None) -> RoundRun:
        rec = self.round_record(run.round)
        who = sorted(who or rec.participants)
        rng = np.random.default_rng(seed)
        with Timer(run.timings, "prepare"):
            run.samples = {m: 100 * (i + 1) for i, m in enumerate(sorted(rec.participants))}
            for m in who:
                if self.spec["privacy"] == "clear":
                    run.encoded[m] = fixedpoint.encode(rng.normal(0.0, 0.05, self.n))
                    run.payloads[m] = codec.pack(run.encoded[m])
                    continue
                enc = fixedpoint.encode_weighted(rng.normal(0.0, 0.05, self.n), run.samples[m],
                                                 headroom=len(rec.participants))
                ctx = secagg.round_context(self.job_id, run.round)
                seeds = {o: secagg.pairwise_seed(self.keys[(m, run.round)][0], bytes.fromhex(rec.public_keys[o]), ctx)
                         for o in rec.participants if o != m}
                run.encoded[m] = enc
                run.payloads[m] = codec.pack(secagg.mask_update(enc, m, seeds))
        endorsed = self.n <= self.spec.get("endorsed_max_params", 1_000_000)

        def one(m: str) -> Written:
            i = sorted(rec.participants).index(m)
            meta = update_meta(run.payloads[m], self.n, run.samples[m], i, (endpoints or {}).get(m))
            return self.cons.parties[m].trainer.submit_update(self.job_id, run.round, meta,
                                                              run.payloads[m] if endorsed else None)

        with Timer(run.timings, "submit"):
            run.writes.update({f"submit:{m}": w for m, w in self.parallel(one, who).items()})
        return run

    def compute(self, run: RoundRun) -> Result:
        """The result every org computes itself (here from the payloads the test holds)."""
        with Timer(run.timings, "compute"):
            words = {m: codec.unpack(p, self.n) for m, p in run.payloads.items()}
            samples = {m: run.samples[m] for m in words}
            if self.spec["privacy"] == "clear":
                factor = Incentives.from_dict(self.spec.get("incentives", {})).anomaly_factor
                agg = aggregate.clear_aggregate(self.rule, words, samples, factor)
            else:
                agg = aggregate.secure_aggregate(self.rule, words, samples, {}, [])
            self.step = optimizers.server_step(self.opt, agg.words, self.opt_state)
            run.result = Result(agg.hash, h(f"model-{self.step.hash}"), agg.contributors, agg.flagged,
                                self.step.hash if self.opt else "", self.step.state_hash)
        return run.result

    def vote(self, run: RoundRun, who: Iterable[str] | None = None) -> RoundRun:
        rec = self.round_record(run.round)
        last = run.round >= self.spec["rounds"]
        res = run.result or self.compute(run)

        def one(m: str) -> Written:
            nxt = None if last else self.key(m, run.round + 1).hex()
            return self.cons.parties[m].trainer.vote(self.job_id, run.round,
                                                     Ballot(True, res, {"val_acc_milli": 900}, nxt))

        with Timer(run.timings, "vote"):
            run.writes.update({f"vote:{m}": w for m, w in self.parallel(one, who or sorted(rec.stakes)).items()})
        return run

    def finalize(self, run: RoundRun) -> RoundRun:
        rec = self.round_record(run.round)
        with Timer(run.timings, "finalize"):
            w = self.cons.synced(self.cons.parties[rec.leader].trainer.finalize_round(self.job_id, run.round,
                                                                                      self.opt_state))
        run.writes["finalize"] = w
        run.closed = w.value
        if w.value["state"] == "finalized" and self.step is not None:
            self.opt_state = self.step.state or None
        return run

    def full_round(self, run: RoundRun, seed: int = 0, endpoints: dict[str, str] | None = None) -> RoundRun:
        t0 = time.perf_counter()
        self.submit(run, seed, endpoints=endpoints)
        self.vote(run)
        self.finalize(run)
        run.timings["total"] = time.perf_counter() - t0
        return run

    def close(self) -> None:
        self.pool.shutdown(wait=False)


def block_bytes(party: Party, first: int, last: int) -> int:
    """Serialized size of blocks ``first..last`` on ``party``'s peer (qscc GetBlockByNumber)."""
    qs = party.network.qscc()
    return sum(len(qs.raw_block(n).SerializeToString()) for n in range(first, last + 1))


def invalid_transactions(party: Party, first: int, last: int) -> list[tuple[int, str]]:
    """(block, validation code) of every transaction that blocks ``first..last`` marked invalid."""
    from fabric_protos.common import common_pb2
    from fedfabric.ledger.contract import validation_code_name

    qs = party.network.qscc()
    bad = []
    for n in range(first, last + 1):
        flags = qs.raw_block(n).metadata.metadata[common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER]
        bad += [(n, validation_code_name(c)) for c in flags if c != 0]
    return bad


@contextmanager
def initialized_consortium(net: Any) -> Iterator[Consortium]:
    """The product chaincode deployed on ``net``, every org's clients ready, the consortium initialized
    (tolerating another test module having done it)."""
    deploy_product(net)
    with Consortium(net.layout) as c:
        c.wait_ready()
        c.init()
        yield c


def endorse_at(client: FedFabricClient, function: str, args: list[str], seconds: int,
               orgs: Optional[list[str]] = None) -> Exception:
    """Ask for the endorsement of ``function(*args)`` with a proposal timestamped ``seconds`` (a client
    forging time): the error the endorsers answer with (``Rejected`` with the contract's message), or an
    AssertionError if they endorsed it."""
    from fabric_protos.gateway import gateway_pb2
    from fabric_protos.peer import proposal_pb2

    from fedfabric.client import _rejection
    from fedfabric.ledger.proposal import build_proposal

    contract = client.contract
    gw = contract.network.gateway
    tx_id, proposal = build_proposal(gw.identity, contract.network.channel_id, contract.chaincode_id, function,
                                     args, now_ns=int(seconds) * 1_000_000_000)
    raw = proposal.SerializeToString()
    signed = proposal_pb2.SignedProposal(proposal_bytes=raw, signature=gw.identity.sign(raw))
    req = gateway_pb2.EndorseRequest(transaction_id=tx_id, channel_id=contract.network.channel_id,
                                     proposed_transaction=signed, endorsing_organizations=orgs or [])
    try:
        gw.stub.Endorse(req, timeout=30)
    except grpc.RpcError as err:
        return _rejection(function, EndorseError.from_rpc_error(err, tx_id, gw.endpoint, 30))
    return AssertionError(f"{function} with timestamp {seconds} was endorsed")
