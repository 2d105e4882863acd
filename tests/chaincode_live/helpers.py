"""Drive the product chaincode ``fedfabric`` on a real network through the Gateway.

Shared by the live contract tests (``tests/chaincode_live``) and ``benchmarks/ledger_round.py``.

``Consortium(layout)`` opens one Gateway per org (trainer ``User1``, and ``Admin`` for admin-only
writes) with a :class:`fedfabric.client.FedFabricClient` each. ``run_secure_round`` plays a whole
secure FedAvg round (open → register ×3 → close → 3 masked submissions → aggregate → 3 votes →
finalize) with the app's fixed-point codec and pairwise masks, waiting after every write until every
peer has committed it (so the next org never simulates on a stale ledger).
"""
from __future__ import annotations

import hashlib
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import grpc
import numpy as np

from fedfabric.client import FedFabricClient, Rejected, Written, open_client, update_meta
from fedfabric.fl import fixedpoint, secagg
from fedfabric.ledger import EndorseError, GatewayError
from fedfabric_cc import codec

CHAINCODE = "fedfabric"
QUORUM = "2/3"
STAKE = 100
FRAC_BITS = 16
WEIGHT_SCALE = 1024


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


# ---- jobs and payloads
def shape_of(num_params: int) -> list[list[int]]:
    return [[num_params]]


def secure_job_spec(job_id: str, num_params: int, window_s: int = 60, rounds: int = 3, **over: Any) -> dict:
    spec = {"job_id": job_id,
            "model": {"arch_id": "flat-vector", "arch_hash": h(f"arch-{num_params}"),
                      "initial_hash": h(f"{job_id}-v0"), "shape_digest": codec.shape_digest(shape_of(num_params)),
                      "num_params": num_params},
            "hyperparams": {"lr": "0.01", "local_epochs": 1, "batch_size": 32},
            "rounds": rounds, "privacy": "secure", "aggregation": {"rule": "fedavg"}, "dp": {"enabled": False},
            "quorum": QUORUM, "min_participants": 2,
            "windows": {"registration_s": window_s, "submission_s": window_s, "approval_s": window_s},
            "incentives": {"reward_per_round": 300}}
    spec.update(over)
    return spec


def training_facts(opened_at: int, seed: int) -> dict:
    return {"start": opened_at, "end": opened_at + 1, "epochs": 1, "iterations": 10,
            "loss_per_epoch": [500_000 + seed], "data_fingerprint": h(f"data-{seed}")}


def make_deltas(msps: Iterable[str], num_params: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.normal(0.0, 0.05, num_params) for m in sorted(msps)}


def encode_all(deltas: dict[str, np.ndarray], samples: dict[str, int]) -> dict[str, np.ndarray]:
    return {m: fixedpoint.encode_weighted(d, samples[m]) for m, d in deltas.items()}


def mask_all(encoded: dict[str, np.ndarray], keys: dict[str, tuple[Any, bytes]], job_id: str,
             r: int) -> dict[str, bytes]:
    """Each org's masked payload: pairwise seeds from its private key and the others' public keys."""
    ctx = f"{job_id}|{r}".encode()
    out = {}
    for m, enc in encoded.items():
        seeds = {o: secagg.pairwise_seed(keys[m][0], keys[o][1], ctx) for o in keys if o != m}
        out[m] = secagg.mask_update(enc, m, seeds).astype("<u4").tobytes()
    return out


def expected_fedavg(encoded: dict[str, np.ndarray], samples: dict[str, int]) -> bytes:
    """Plain FedAvg of the unmasked quantized updates, from first principles (Python integers).

    Each org encoded ``delta * n / 1024``; the mod-2^32 sum read as int32, times 1024, divided by the
    total sample count and rounded half to even, back to two's complement little-endian uint32."""
    total_n = sum(samples.values())
    sums = [0] * len(next(iter(encoded.values())))
    for enc in encoded.values():
        for i, w in enumerate(enc.tolist()):
            sums[i] += w
    out = bytearray()
    for s in sums:
        s %= 1 << 32
        if s >= 1 << 31:
            s -= 1 << 32
        num = s * WEIGHT_SCALE
        q, rem = divmod(num, total_n)
        if 2 * rem > total_n or (2 * rem == total_n and q % 2 == 1):
            q += 1
        out += (q % (1 << 32)).to_bytes(4, "little")
    return bytes(out)


def expected_fedavg_np(encoded: dict[str, np.ndarray], samples: dict[str, int]) -> bytes:
    """The same as :func:`expected_fedavg` in vectorised int64 (for large models)."""
    total_n = sum(samples.values())
    s = np.zeros(len(next(iter(encoded.values()))), dtype=np.int64)
    for enc in encoded.values():
        s += enc.astype(np.int64)
    s %= 1 << 32
    s = np.where(s >= 1 << 31, s - (1 << 32), s) * WEIGHT_SCALE
    q = np.floor_divide(s, total_n)
    rem = s - q * total_n
    q += ((2 * rem > total_n) | ((2 * rem == total_n) & (q % 2 == 1))).astype(np.int64)
    return (q % (1 << 32)).astype("<u4").tobytes()


def model_hash_for(base_hash: str, aggregate_hash: str) -> str:
    """What the voters agree the next model hashes to (the test stands in for applying the update)."""
    return h(f"{base_hash}+{aggregate_hash}")


@dataclass
class RoundRun:
    """Everything a secure round left behind, for assertions and measurements."""

    job_id: str
    round: int
    leader: str
    writes: dict[str, Written] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    keys: dict[str, tuple[Any, bytes]] = field(default_factory=dict)
    encoded: dict[str, np.ndarray] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    payloads: dict[str, bytes] = field(default_factory=dict)
    aggregate: bytes = b""
    aggregate_hash: str = ""
    model_hash: str = ""

    @property
    def first_block(self) -> int:
        return min(w.block_number for w in self.writes.values())

    @property
    def last_block(self) -> int:
        return max(w.block_number for w in self.writes.values())


class Timer:
    def __init__(self, sink: dict[str, float], name: str) -> None:
        self.sink, self.name = sink, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.sink[self.name] = self.sink.get(self.name, 0.0) + time.perf_counter() - self.t0


def create_job(cons: Consortium, spec: dict) -> Written:
    return cons.synced(cons.first().admin.create_job(spec))


def register_round(cons: Consortium, job_id: str, run: RoundRun | None = None) -> RoundRun:
    """open_round → start_registration → register ×N (fresh X25519 keys) → close_registration."""
    opener = cons.first().trainer
    t: dict[str, float] = {} if run is None else run.timings
    with Timer(t, "open"):
        w_open = cons.synced(opener.open_round(job_id))
    r = w_open.value["round"]
    run = run or RoundRun(job_id, r, w_open.value["leader"], timings=t)
    run.round, run.leader = r, w_open.value["leader"]
    run.writes["open"] = w_open
    with Timer(t, "start_registration"):
        run.writes["start_registration"] = cons.synced(opener.start_registration(job_id, r))
    with Timer(t, "register"):
        for m in cons.msps:
            priv, pub = secagg.generate_keypair()
            run.keys[m] = (priv, pub)
            run.writes[f"register:{m}"] = cons.synced(cons.parties[m].trainer.register(job_id, r, pub))
    with Timer(t, "close_registration"):
        run.writes["close_registration"] = cons.synced(opener.close_registration(job_id, r))
    return run


def submit_updates(cons: Consortium, run: RoundRun, num_params: int, seed: int = 0,
                   samples: dict[str, int] | None = None) -> RoundRun:
    """3 masked fixed-point submissions; payloads in the transient map, metadata public."""
    t = run.timings
    with Timer(t, "prepare_payloads"):
        deltas = make_deltas(cons.msps, num_params, seed)
        run.samples = samples or {m: 100 * (i + 1) for i, m in enumerate(cons.msps)}
        run.encoded = encode_all(deltas, run.samples)
        run.payloads = mask_all(run.encoded, run.keys, run.job_id, run.round)
    opened_at = run.writes["open"].value["times"]["open"]
    shape = codec.shape_digest(shape_of(num_params))
    with Timer(t, "submit"):
        for i, m in enumerate(cons.msps):
            p = run.payloads[m]
            meta = update_meta(p, shape, run.samples[m], training_facts(opened_at, i),
                               metrics={"train_acc_milli": 800 + i})
            run.writes[f"submit:{m}"] = cons.synced(cons.parties[m].trainer.submit_update(run.job_id, run.round, meta, p))
    return run


def aggregate(cons: Consortium, run: RoundRun) -> RoundRun:
    with Timer(run.timings, "aggregate"):
        w = cons.synced(cons.parties[run.leader].trainer.aggregate(run.job_id, run.round))
    run.writes["aggregate"] = w
    run.aggregate_hash = w.value["aggregate"]["aggregate_hash"]
    run.model_hash = model_hash_for(w.value["base_hash"], run.aggregate_hash)
    return run


def fetch_aggregate(cons: Consortium, run: RoundRun, msp: str | None = None) -> bytes:
    """The aggregate's bytes from ``msp``'s peer (checked against the hash on the ledger)."""
    with Timer(run.timings, "get_aggregate"):
        _, data = eventually(lambda: cons.parties[msp or run.leader].trainer.get_aggregate(run.job_id, run.round))
    run.aggregate = run.aggregate or data
    return data


def vote_and_finalize(cons: Consortium, run: RoundRun) -> RoundRun:
    with Timer(run.timings, "vote"):
        for i, m in enumerate(cons.msps):
            run.writes[f"vote:{m}"] = cons.synced(cons.parties[m].trainer.vote(
                run.job_id, run.round, True, run.model_hash, {"val_acc_milli": 900 + i}))
    with Timer(run.timings, "finalize"):
        run.writes["finalize"] = cons.synced(cons.first().trainer.finalize_round(run.job_id, run.round))
    return run


def run_secure_round(cons: Consortium, job_id: str, num_params: int, seed: int = 0) -> RoundRun:
    """A whole secure round; ``run.timings`` has seconds per step (and ``total``)."""
    t0 = time.perf_counter()
    run = register_round(cons, job_id)
    submit_updates(cons, run, num_params, seed)
    aggregate(cons, run)
    fetch_aggregate(cons, run)
    vote_and_finalize(cons, run)
    run.timings["total"] = time.perf_counter() - t0
    return run


def block_bytes(party: Party, first: int, last: int) -> int:
    """Serialized size of blocks ``first..last`` on ``party``'s peer (qscc GetBlockByNumber)."""
    qs = party.network.qscc()
    return sum(len(qs.raw_block(n).SerializeToString()) for n in range(first, last + 1))


@contextmanager
def initialized_consortium(net: Any) -> Iterator[Consortium]:
    """The product chaincode deployed on ``net``, every org's clients ready, the consortium initialized
    (tolerating another test module having done it)."""
    deploy_product(net)
    with Consortium(net.layout) as c:
        c.wait_ready()
        c.init()
        yield c
