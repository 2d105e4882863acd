"""A consortium of many orgs on this machine: its consortium document, and a network of it brought up
with the product chaincode and the consortium recorded (for tests/e2e/test_live_ten_orgs.py and
benchmarks/ten_orgs.py).

Lean: one Raft orderer, one peer per org. Each org's seven listeners (peer, its chaincode and
operations ports, chaincode server, training node, CA and its operations port) are consecutive, from
``BASE_PORT`` on, in a range the default consortium does not use: a network of these stays clear of
a session's 3-org network at the same port offset.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

from fedfabric.network.config import ConsortiumConfig, parse_config

from ..conftest import default_raw, shift_ports

BASE_PORT = 7300        # org i (from 1) uses BASE_PORT + 10 * (i - 1) + 0..6
MAX_ORGS = 25           # ... up to 7546, below the default orgs' 8051


def many_orgs_raw(n: int, offset: int, stakes: Optional[list[int]] = None, orderers: int = 1) -> dict:
    """The consortium document of ``n`` orgs (``org1``/``Org1MSP`` …, stake 100 each unless ``stakes``),
    ``orderers`` Raft orderers of the default file, every port moved by ``offset``."""
    if not 1 <= n <= MAX_ORGS:
        raise ValueError(f"1..{MAX_ORGS} orgs, not {n}")
    stakes = list(stakes) if stakes is not None else [100] * n
    if len(stakes) != n:
        raise ValueError(f"{len(stakes)} stakes for {n} orgs")
    raw = default_raw()
    raw["orderer_org"]["orderers"] = raw["orderer_org"]["orderers"][:orderers]
    orgs = []
    for i in range(1, n + 1):
        p = BASE_PORT + 10 * (i - 1)
        orgs.append({"name": f"org{i}", "msp_id": f"Org{i}MSP", "stake": stakes[i - 1],
                     "peer": {"name": "peer0", "port": p, "chaincode_port": p + 1, "operations_port": p + 2},
                     "chaincode_server_port": p + 3, "node_port": p + 4,
                     "ca": {"name": "ca", "port": p + 5, "operations_port": p + 6}})
    raw["orgs"] = orgs
    return shift_ports(raw, offset)


def many_orgs_config(n: int, offset: int, **kw: Any) -> ConsortiumConfig:
    return parse_config(many_orgs_raw(n, offset, **kw))


@dataclass
class Consortium:
    """A running many-org network: its manager, config file, org1's admin client and gateway."""

    net: Any
    config_path: Path
    admin: Any
    gateway: Any
    timings: dict[str, float]

    @property
    def root(self) -> Path:
        return self.net.layout.root


@contextmanager
def many_orgs_network(run_root: Path, n: int, offset: int, stakes: Optional[list[int]] = None,
                      report=None, keep_files: bool = False) -> Iterator[Consortium]:
    """Network up (one orderer, ``n`` peers, their CAs), the fedfabric chaincode deployed, the consortium
    recorded; taken down afterwards, whatever happens (``keep_files``: its run dir stays, for the logs)."""
    from fedfabric.client import open_client
    from fedfabric.network.deploy import product_deployment
    from fedfabric.network.manager import SiteManager
    from fedfabric.node.bootstrap import init_consortium

    raw = many_orgs_raw(n, offset, stakes)
    run_root.mkdir(parents=True, exist_ok=True)
    cfg_path = run_root / "consortium.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    config = parse_config(raw, source=cfg_path)
    net = SiteManager(config, run_root / "run", report=report)
    timings: dict[str, float] = {}
    gw = None
    try:
        t0 = time.monotonic()
        net.up()
        timings["network_up_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        net.deploy(product_deployment(net.config))
        timings["deploy_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        gw, admin = open_client("org1", "Admin", config=net.config, run_root=net.layout.root)
        admin.wait_ready()
        init_consortium(admin, net.config)
        timings["consortium_s"] = time.monotonic() - t0
        yield Consortium(net, cfg_path, admin, gw, timings)
    finally:
        if gw is not None:
            gw.close()
        net.down(keep_state=keep_files)


def job_file(n: int, rounds: int, privacy: str = "secure", job_id: str = "ten-orgs") -> dict:
    """A short job every org of an ``n``-org consortium takes part in: breast cancer, logistic regression,
    IID shards, one epoch, quorum 2/3 of stake."""
    return {"job_id": job_id, "dataset": "breast_cancer", "model": {"arch": "logreg"}, "rounds": rounds,
            "partition": {"kind": "iid"}, "training": {"epochs": 1, "lr": 0.05}, "privacy": privacy,
            "quorum": "2/3", "min_participants": max(2, -(-2 * n // 3)),
            "participants": [f"org{i}" for i in range(1, n + 1)],
            "windows": {"registration_s": 120, "submission_s": 120, "approval_s": 120}}


@dataclass
class JobRun:
    job_id: str
    created: Any                   # the create_job write (tx id, block)
    job: dict                      # get_job at the end
    seconds: float                 # nodes started -> job no longer active
    rounds: list[dict]             # per round: its times (from the nodes' own records) and breakdown
    startup_s: float               # nodes started -> every node joined the job
    logs: dict[str, str]           # org -> node.log


def _records(root: Path, org: str, job_id: str) -> list[dict]:
    import json

    path = root / "fl" / org / f"{job_id}.log.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def round_times(root: Path, orgs: list[str], job_id: str, t_start: float, rounds: int) -> tuple[float, list[dict]]:
    """Each round's wall time and phases from every node's records (``t``: the node's clock, one machine):
    open (the previous round closed; round 1: nodes started) -> every update submitted (train, mask,
    submit) -> every ballot in (fetch, aggregate, evaluate, vote) -> the leader's finalize committed."""
    recs = [r for o in orgs for r in _records(root, o, job_id)]

    def times(what: str, r: int) -> list[float]:
        return sorted(x["t"] for x in recs if x["what"] == what and x.get("round") == r)

    joined = sorted(x["t"] for x in recs if x["what"] == "joined")
    startup = (joined[-1] - t_start) if len(joined) == len(orgs) else float("nan")
    out = []
    opened = t_start
    for r in range(1, rounds + 1):
        sub, vot, fin = times("update submitted", r), times("voted", r), times("round finalized", r)
        closed = fin[0] if fin else (times("round closed", r) or [float("nan")])[0]
        last_sub = sub[-1] if sub else float("nan")
        last_vote = vot[-1] if vot else float("nan")
        out.append({"round": r, "round_s": closed - opened, "submitted": len(sub), "voted": len(vot),
                    "phases_s": {"train+submit": last_sub - opened, "fetch+aggregate+vote": last_vote - last_sub,
                                 "finalize": closed - last_vote},
                    "first_submit_s": (sub[0] - opened) if sub else float("nan")})
        opened = closed
    return startup, out


def run_job(c: Consortium, job: dict, timeout: float = 300.0, torch_threads: int = 1) -> JobRun:
    """Create ``job``, start one ``fedfabric node`` per participant, wait until the job is over."""
    from fedfabric.node.bootstrap import job_spec
    from fedfabric.node.demo import start_nodes, stop_nodes
    from fedfabric.node.jobfile import parse_job

    msp_of = {o.name: o.msp_id for o in c.net.config.orgs}
    created = c.admin.create_job(job_spec(parse_job(dict(job)), msp_of))
    job_id = created.value["job_id"]
    orgs = list(job["participants"])
    extra = {o: ["--torch-threads", str(torch_threads)] for o in orgs}
    t0 = time.time()
    procs = start_nodes(orgs, job_id, c.root, c.config_path, extra)
    try:
        end = time.monotonic() + timeout
        while True:
            j = c.admin.get_job(job_id)
            if j["status"] != "active":
                break
            dead = [o for o, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > end:
                tails = {o: (c.root / "fl" / o / "node.log").read_text()[-1500:] for o in (dead or orgs[:1])}
                raise AssertionError(f"job {job_id}: {'nodes exited: ' + ', '.join(dead) if dead else 'timed out'} "
                                     f"(round {j['current_round']}) {tails}")
            time.sleep(0.25)
        took = time.time() - t0
        for o, p in procs.items():
            p.wait(60)
    finally:
        stop_nodes(procs)
    startup, rounds = round_times(c.root, orgs, job_id, t0, job["rounds"])
    logs = {o: (c.root / "fl" / o / "node.log").read_text() for o in orgs}
    return JobRun(job_id, created, j, took, rounds, startup, logs)


# ---- the policies in force, read from the chain
def lifecycle_envelope(c: Consortium, name: str = "fedfabric") -> bytes:
    """The committed chaincode definition's endorsement policy (SignaturePolicyEnvelope bytes), as Fabric
    compiled it from the policy string the deployment approved (``peer lifecycle chaincode querycommitted``)."""
    import base64

    from fabric_protos.peer import policy_pb2
    from fedfabric.network import lifecycle

    d = lifecycle.committed(c.net.fabric, c.net.config, c.net.layout, c.net.config.orgs[0], name)
    app = policy_pb2.ApplicationPolicy.FromString(base64.b64decode(d["validation_parameter"]))
    return app.signature_policy.SerializeToString()


def key_policies_written(c: Consortium, tx_id: str, block_number: int) -> dict[str, bytes]:
    """Key -> validation parameter (key-level endorsement policy) that transaction ``tx_id`` wrote."""
    from fabric_protos.common import common_pb2
    from fabric_protos.ledger.rwset import rwset_pb2
    from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
    from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

    block = c.admin.contract.network.qscc().raw_block(block_number)
    out: dict[str, bytes] = {}
    for raw in block.data.data:
        payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
        if common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id != tx_id:
            continue
        for action in transaction_pb2.Transaction.FromString(payload.data).actions:
            cap = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
            prp = proposal_response_pb2.ProposalResponsePayload.FromString(cap.action.proposal_response_payload)
            results = proposal_pb2.ChaincodeAction.FromString(prp.extension).results
            for ns in rwset_pb2.TxReadWriteSet.FromString(results).ns_rwset:
                for mw in kv_rwset_pb2.KVRWSet.FromString(ns.rwset).metadata_writes:
                    for e in mw.entries:
                        if e.name == "VALIDATION_PARAMETER":
                            out[mw.key] = e.value
    return out
