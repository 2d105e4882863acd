"""Three OrgNodes run real rounds against the contract on the in-memory stub (no peer, fast)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from fedfabric.artifacts import ArtifactStore, model_hash
from fedfabric.fl import fixedpoint
from fedfabric.node.bootstrap import create_job
from fedfabric.node.jobfile import parse_job
from fedfabric.node.runtime import NodeOptions, NodeStopped, OrgNode

from tests.chaincode.harness import ORGS, Ledger, init

from .memledger import MemClient

MSP_OF = {f"org{i}": f"Org{i}MSP" for i in (1, 2, 3)}


def _job(job_id: str, rounds: int = 2, **over) -> dict:
    doc = {"job_id": job_id, "dataset": "breast_cancer", "model": {"arch": "logreg"}, "rounds": rounds,
           "partition": {"kind": "dirichlet", "alpha": 0.5}, "training": {"epochs": 1, "lr": 0.05},
           "privacy": "secure", "quorum": "2/3", "min_participants": 2, "participants": ["org1", "org2", "org3"],
           "windows": {"registration_s": 30, "submission_s": 30, "approval_s": 30}}
    doc.update(over)
    return doc


def _setup(tmp_path, doc):
    led = Ledger()
    init(led)
    lock = threading.Lock()
    admin = MemClient(led, ORGS[0], "admin", lock)
    create_job(admin, parse_job(doc), MSP_OF)
    nodes = [OrgNode(MemClient(led, m, lock=lock), m, doc["job_id"], tmp_path / m, NodeOptions(grace=0.0, tick=0.01))
             for m in ORGS]
    return led, admin, nodes


def _drive(nodes, max_steps=400, skip=()):
    active = [n for n in nodes if n not in skip]
    for _ in range(max_steps):
        active = [n for n in active if n.step()]
        if not active:
            return
    raise AssertionError("nodes did not finish the job")


def test_three_nodes_finish_a_secure_job_with_verified_lineage(tmp_path):
    led, admin, nodes = _setup(tmp_path, _job("j-sec", rounds=2))
    _drive(nodes)
    job = admin.get_job("j-sec")
    assert job["status"] == "completed" and job["rounds_finalized"] == 2 and job["latest_version"] == 2
    v2 = admin.get_version("j-sec", 2)
    assert [c["msp_id"] for c in v2["contributors"]] == ORGS
    assert all(a["approve"] and a["model_hash"] == v2["model_hash"] for a in v2["approvals"])
    # every node holds every version, and the bytes hash to what the ledger recorded
    for n in nodes:
        for v in (0, 1, 2):
            h = admin.get_version("j-sec", v)["model_hash"]
            vec = ArtifactStore(n.store.root).get_model(h)
            assert model_hash(vec) == h
    # the version is base + the aggregate, bit for bit
    agg_rec, data = admin.get_aggregate("j-sec", 2)
    base = nodes[0].store.get_model(admin.get_version("j-sec", 1)["model_hash"])
    new = nodes[0].store.get_model(v2["model_hash"])
    delta = fixedpoint.decode(np.frombuffer(data, "<u4").astype(np.uint32))
    assert np.array_equal((base.astype(np.float64) + delta).astype(np.float32), new)
    assert agg_rec["aggregate_hash"] == v2["aggregate_hash"]
    # secure == plain FedAvg of the same quantized updates, bit for bit: redo each org's round-2 training
    # (same base, shard and seed), quantize it as the node does, sum WITHOUT masks, take the integer FedAvg
    assert data == _plain_fedavg_words(admin.get_job("j-sec"), admin.get_round("j-sec", 2), base)


def _plain_fedavg_words(job: dict, rec: dict, base: np.ndarray) -> bytes:
    """The unmasked FedAvg of the round's quantized updates, as the aggregate's bytes."""
    from fedfabric.fl.train import local_train
    from fedfabric.node.task import task_for
    from fedfabric_cc import aggregation, codec

    hyper, r = job["spec"]["hyperparams"], rec["round"]
    total, samples = np.zeros(base.size, np.uint32), 0
    for m in rec["submitted"]:
        t = task_for(job, m)
        _, update, _ = local_train(t.new_model(), base, t.X_train, t.y_train, epochs=int(hyper["epochs"]),
                                   lr=float(hyper["lr"]), batch_size=int(hyper["batch_size"]),
                                   optimizer=hyper["optimizer"], mu=float(hyper["mu"]), seed=int(hyper["seed"]) * 1000 + r)
        q = fixedpoint.encode_weighted(update, t.samples, headroom=len(rec["participants"]))
        total = fixedpoint.add_mod(total, q)
        samples += t.samples
    assert samples == sum(c["sample_count"] for c in rec["aggregate"]["contributors"])
    return codec.pack(codec.from_signed(aggregation.fedavg_from_weighted_sum(total, samples)))


def test_dropped_org_is_recovered_by_seed_reveals(tmp_path):
    led, admin, nodes = _setup(tmp_path, _job("j-drop", rounds=1, windows={"registration_s": 30, "submission_s": 2,
                                                                           "approval_s": 30}))
    crashed = nodes[2]
    crashed.opt.stop_after_round, crashed.opt.stop_in_state = 1, "collecting"
    # everyone registers, then org3 "crashes" before submitting
    for _ in range(50):
        for n in nodes[:2]:
            n.step()
        try:
            crashed.step()
        except NodeStopped:
            break
    import time
    deadline = time.time() + 10
    while admin.get_job("j-drop")["status"] == "active" and time.time() < deadline:
        for n in nodes[:2]:
            n.step()
        time.sleep(0.05)
    rnd = admin.get_round("j-drop", 1)
    assert rnd["state"] == "finalized", rnd.get("reason")
    assert rnd["dropped"] == ["Org3MSP"]
    report = admin.round_report("j-drop", 1)
    assert report["participants"]["Org1MSP"]["revealed_for"] == ["Org3MSP"]
    v1 = admin.get_version("j-drop", 1)
    assert [c["msp_id"] for c in v1["contributors"]] == ["Org1MSP", "Org2MSP"]
    assert model_hash(nodes[0].store.get_model(v1["model_hash"])) == v1["model_hash"]


def test_restarted_node_rejoins_the_current_round(tmp_path):
    led, admin, nodes = _setup(tmp_path, _job("j-restart", rounds=2))
    victim = nodes[1]
    victim.opt.stop_after_round, victim.opt.stop_in_state = 1, "collecting"
    stopped = False
    for _ in range(100):
        for n in (nodes[0], nodes[2]):
            n.step()
        if not stopped:
            try:
                victim.step()
            except NodeStopped:
                stopped = True
        if stopped:
            break
    assert stopped
    # a fresh process for the same org, same work dir: it reloads its round key from disk and submits
    reborn = OrgNode(MemClient(led, ORGS[1]), ORGS[1], "j-restart", tmp_path / ORGS[1], NodeOptions(grace=0.0))
    _drive([nodes[0], reborn, nodes[2]])
    job = admin.get_job("j-restart")
    assert job["rounds_finalized"] == 2
    assert [c["msp_id"] for c in admin.get_version("j-restart", 1)["contributors"]] == ORGS


def test_clear_mode_robust_rule_finishes(tmp_path):
    led, admin, nodes = _setup(tmp_path, _job("j-clear", rounds=2, privacy="clear", min_participants=3,
                                              aggregation={"rule": "trimmed_mean", "trim": 1}))
    _drive(nodes)
    v2 = admin.get_version("j-clear", 2)
    assert v2["status"] == "finalized" and v2["privacy"] == "clear" and v2["rule"] == "trimmed_mean"
    assert model_hash(nodes[2].store.get_model(v2["model_hash"])) == v2["model_hash"]


def test_dp_epsilon_is_accounted_and_recorded_per_round(tmp_path):
    from fedfabric.fl import dp

    led, admin, nodes = _setup(tmp_path, _job("j-dp", rounds=3, dp={"enabled": True, "clip_norm": 0.1,
                                                                    "noise_multiplier": 0.5, "epsilon_budget": 50}))
    _drive(nodes)
    cfg = dp.DPConfig(clip_norm=0.1, noise_multiplier=0.5, delta=1e-5)
    job = admin.get_job("j-dp")
    assert job["rounds_finalized"] == 3, [admin.get_round("j-dp", r).get("reason") for r in (1, 2, 3)]
    totals = [admin.get_version("j-dp", v)["dp_epsilon_total_milli"] for v in (1, 2, 3)]
    assert totals[0] > 0 and totals[0] < totals[1] < totals[2]
    assert abs(totals[2] / 1000 - dp.epsilon(cfg, 3)) < 0.01  # per-round increments add up to the accountant's total
    assert not admin.get_version("j-dp", 3)["dp_budget_exceeded"]


def test_dp_job_report_shows_the_epsilon(tmp_path):
    from fedfabric import audit

    led, admin, nodes = _setup(tmp_path, _job("j-dp2", rounds=2, dp={"enabled": True, "clip_norm": 0.1,
                                                                     "noise_multiplier": 0.5, "epsilon_budget": 50}))
    _drive(nodes)
    files = audit.report(admin, "j-dp2", tmp_path / "rep", store=nodes[0].store)
    html = files.html.read_text()
    total = admin.get_version("j-dp2", 2)["dp_epsilon_total_milli"] / 1000
    assert "Differential privacy" in html and f"{total:.3f}" in html
