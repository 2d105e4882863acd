"""Three OrgNodes run real rounds against the contract on the in-memory stub (no peer, fast)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fedfabric.artifacts import ArtifactStore, model_hash
from fedfabric.audit import AuditError, lineage
from fedfabric.fl.simulate import simulate
from fedfabric.node.bootstrap import create_job
from fedfabric.node.jobfile import parse_job
from fedfabric_protocol.spec import JobSpec

from tests.chaincode.harness import ORGS, init

from .memledger import MemClient, drive, wall_clock_ledger

MSP_OF = {f"org{i}": f"Org{i}MSP" for i in (1, 2, 3)}


def _job(job_id: str, rounds: int = 2, **over) -> dict:
    doc = {"job_id": job_id, "dataset": "breast_cancer", "model": {"arch": "logreg"}, "rounds": rounds,
           "partition": {"kind": "dirichlet", "alpha": 0.5}, "training": {"epochs": 1, "lr": 0.05},
           "privacy": "secure", "quorum": "2/3", "min_participants": 2, "participants": ["org1", "org2", "org3"],
           "windows": {"registration_s": 30, "submission_s": 30, "approval_s": 30}}
    doc.update(over)
    return doc


def _setup(make_node, doc, orgs=ORGS):
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    job = create_job(admin, parse_job(doc), MSP_OF)
    nodes = [make_node(led, m, doc["job_id"]) for m in orgs]
    return led, admin, nodes, JobSpec.from_dict(job["spec"])


def _writes(led, fn):
    return [x for x in led.stub.rw_log if x.writes]


def test_three_nodes_finish_a_secure_job_identical_to_the_in_process_run(make_node):
    led, admin, nodes, spec = _setup(make_node, _job("j-sec", rounds=3))
    drive(led, nodes)
    job = admin.get_job("j-sec")
    assert job["status"] == "completed" and job["rounds_finalized"] == 3 and job["latest_version"] == 3
    v3 = admin.get_version("j-sec", 3)
    assert [c["msp_id"] for c in v3["contributors"]] == ORGS
    assert all(a["approve"] and a["model_hash"] == v3["model_hash"] for a in v3["approvals"])
    # each org's node holds every version, hash-checked
    for n in nodes:
        for v in (1, 2, 3):
            h = admin.get_version("j-sec", v)["model_hash"]
            assert model_hash(ArtifactStore(n.store.root).get_model(h)) == h
    # the ledger's model is the in-process federation's, bit for bit (masks cancel exactly)
    sim = simulate(spec)
    assert [r.aggregate_hash for r in sim.rounds] == [admin.get_version("j-sec", v)["aggregate_hash"] for v in (1, 2, 3)]
    assert sim.rounds[-1].model_hash == v3["model_hash"]
    # three ordered phases per round: after round 1's start, every round is 3 submits + 3 votes + 1 finalize
    rounds = [json_round(led, r) for r in (2, 3)]
    assert rounds == [("submit_update", 3, "vote", 3, "finalize_round", 1)] * 2


def json_round(led, r):
    """The write transactions of round ``r`` by function, in order, from the stub's events."""
    names = {"UpdateSubmitted": "submit_update", "Voted": "vote", "RoundFinalized": "finalize_round",
             "JobCompleted": "finalize_round"}
    import json
    seq = [names.get(e.name, e.name) for e in led.stub.events if json.loads(e.payload).get("round") == r]
    out: list = []
    for fn in seq:
        if out and out[-2] == fn:
            out[-1] += 1
        else:
            out += [fn, 1]
    return tuple(out)


def test_a_dropped_org_is_recovered_by_seed_reveals_and_rejoins(make_node):
    led, admin, nodes, _ = _setup(make_node, _job("j-drop", rounds=3, windows={"registration_s": 30, "submission_s": 3,
                                                                              "reveal_s": 20, "approval_s": 20}))
    drive(led, nodes, until=lambda: all(p["register_tx"] for p in admin.round_report("j-drop", 1)["participants"].values()))
    drive(led, nodes[:2], until=lambda: admin.get_job("j-drop")["current_round"] == 2, pause=0.05)  # org3 is down
    rnd = admin.get_round("j-drop", 1)
    assert rnd.state.value == "finalized" and rnd.outcome["left_out"] == ["Org3MSP"]
    assert admin.round_report("j-drop", 1)["participants"]["Org1MSP"]["revealed_for"] == ["Org3MSP"]
    assert [c["msp_id"] for c in admin.get_version("j-drop", 1)["contributors"]] == ["Org1MSP", "Org2MSP"]
    # org3's node comes back (same work dir): it rebuilds version 1 and registers for round 3
    reborn = make_node(led, "Org3MSP", "j-drop")
    drive(led, nodes[:2] + [reborn], pause=0.02)
    assert admin.get_round("j-drop", 3).participants == tuple(ORGS)
    assert [c["msp_id"] for c in admin.get_version("j-drop", 3)["contributors"]] == ORGS


def test_clear_mode_robust_rule_finishes(make_node):
    led, admin, nodes, _ = _setup(make_node, _job("j-clear", rounds=2, privacy="clear", min_participants=3,
                                                 aggregation={"rule": "trimmed_mean", "trim": 1}))
    drive(led, nodes)
    v2 = admin.get_version("j-clear", 2)
    assert v2["status"] == "finalized" and v2["privacy"] == "clear" and v2["rule"]["rule"] == "trimmed_mean"
    assert model_hash(nodes[2].store.get_model(v2["model_hash"])) == v2["model_hash"]


def test_a_corrupted_local_model_is_fetched_again_from_a_members_node(make_node):
    led, admin, nodes, _ = _setup(make_node, _job("j-heal", rounds=2))
    drive(led, nodes, until=lambda: admin.get_job("j-heal")["latest_version"] == 1)
    h1 = admin.get_version("j-heal", 1)["model_hash"]
    path = nodes[1].store.path(h1)
    path.write_bytes(b"\0" * path.stat().st_size)        # disk corruption under org2's node
    drive(led, nodes)
    assert admin.get_job("j-heal")["rounds_finalized"] == 2
    assert model_hash(nodes[1].store.get_model(h1)) == h1    # healed from another node, hash-checked


def test_dp_epsilon_is_accounted_and_recorded_per_round(make_node):
    from fedfabric.fl import dp

    led, admin, nodes, _ = _setup(make_node, _job("j-dp", rounds=3, dp={"enabled": True, "clip_norm": 0.1,
                                                                      "noise_multiplier": 0.5, "epsilon_budget": 50}))
    drive(led, nodes)
    cfg = dp.DPConfig(clip_norm=0.1, noise_multiplier=0.5, delta=1e-5)
    job = admin.get_job("j-dp")
    assert job["rounds_finalized"] == 3
    totals = [admin.get_version("j-dp", v)["dp_epsilon_total_milli"] for v in (1, 2, 3)]
    assert 0 < totals[0] < totals[1] < totals[2]
    assert abs(totals[2] / 1000 - dp.epsilon(cfg, 3)) < 0.01   # per-round increments add up to the accountant's
    assert not admin.get_version("j-dp", 3)["dp_budget_exceeded"]


def test_nodes_without_an_exchange_read_payloads_from_their_peer_and_never_use_a_bad_copy(make_node, tmp_path):
    from fedfabric.node.runtime import NodeOptions, OrgNode

    led, admin, _, _ = _setup(make_node, _job("j-mis", rounds=1), orgs=())
    nodes = [OrgNode(MemClient(led, m), m, "j-mis", tmp_path / "peer-only" / m, NodeOptions(grace=0.0, tick=0.01))
             for m in ORGS]
    drive(led, nodes, until=lambda: len(admin.round_report("j-mis", 1)["participants"]) == 3 and all(
        p["update"] for p in admin.round_report("j-mis", 1)["participants"].values()))
    # org3's peer serves a wrong payload for org1: the hash check refuses it and org3 cannot compute the
    # result every submitter's payload is needed for (payloads on the peers): it keeps retrying, the others vote
    key = next(k for k in led.stub.private["fedfabricUpdates"] if "Org1MSP" in k)
    good = led.stub.private["fedfabricUpdates"][key]
    led.stub.private["fedfabricUpdates"][key] = bytes(len(good))
    drive(led, nodes[:2], until=lambda: len(admin.round_report("j-mis", 1)["participants"]["Org1MSP"]["vote"] or {}) > 0
          and admin.round_report("j-mis", 1)["participants"]["Org2MSP"]["vote"] is not None)
    led.stub.private["fedfabricUpdates"][key] = good
    drive(led, nodes)
    assert admin.get_job("j-mis")["rounds_finalized"] == 1
    assert all("get_update" in n.client.calls for n in nodes)
    v1 = admin.get_version("j-mis", 1)
    assert all(n.store.has(v1["aggregate_hash"]) and n.store.has(v1["model_hash"]) for n in nodes)


def test_a_server_optimizer_job_in_secure_mode_is_the_in_process_run_bit_for_bit(make_node):
    opt = {"kind": "adam", "lr": 0.02, "beta1": 0.9, "beta2": 0.99, "tau": 0.001}
    led, admin, nodes, spec = _setup(make_node, _job("j-adam", rounds=3, server_optimizer=opt))
    drive(led, nodes)
    job = admin.get_job("j-adam")
    assert job["status"] == "completed" and job["rounds_finalized"] == 3
    sim = simulate(spec)
    vers = [admin.get_version("j-adam", v) for v in (1, 2, 3)]
    assert [r.aggregate_hash for r in sim.rounds] == [v["aggregate_hash"] for v in vers]
    assert [(r.step_hash, r.state_hash, r.model_hash) for r in sim.rounds] == \
           [(v["optimizer"]["step_hash"], v["optimizer"]["state_hash"], v["model_hash"]) for v in vers]
    assert vers[2]["optimizer"]["parent_state_hash"] == vers[1]["optimizer"]["state_hash"]
    # the step is not the aggregate: the optimizer really moved the model
    assert all(v["optimizer"]["step_hash"] != v["aggregate_hash"] for v in vers)
    for n in nodes:   # every node keeps each version's optimizer state, by the hash the ledger recorded
        assert all(n.store.has(v["optimizer"]["state_hash"]) for v in vers)
    # the auditor's lineage counts the approvals of exactly this step and chains the optimizer states
    chain = lineage(admin, "j-adam", blocks=False)
    assert [e["version"] for e in chain] == [3, 2, 1, 0] and all(e["approved_stake"] == 300 for e in chain[:3])
    assert chain[0]["optimizer"]["kind"] == "adam"
    k = led.stub.create_composite_key("version", ["j-adam", "000002"])
    rec = json.loads(led.stub.state[k])
    rec["optimizer"]["state_hash"] = "0" * 64          # a version whose recorded state was changed afterwards
    led.stub.state[k] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(AuditError, match=r"version 3 says it stepped from optimizer state .* but version 2 records "
                                         r"000000000000"):
        lineage(admin, "j-adam", blocks=False)
    with pytest.raises(AuditError, match="version 2 of job j-adam is recorded as finalized, but only 0 of 300"):
        lineage(admin, "j-adam", 2, blocks=False)


def test_a_node_that_lost_the_optimizer_state_fetches_it_from_a_member_node(make_node):
    opt = {"kind": "avgm", "lr": 1, "momentum": 0.5}
    led, admin, nodes, spec = _setup(make_node, _job("j-avgm", rounds=2, server_optimizer=opt,
                                                    endorsed_max_params=0))   # payloads node to node
    assert spec.exchange.value == "nodes"
    drive(led, nodes, until=lambda: admin.get_job("j-avgm")["latest_version"] == 1)
    s1 = admin.get_version("j-avgm", 1)["optimizer"]["state_hash"]
    nodes[2].store.path(s1).unlink()          # org3 lost its copy of the state
    drive(led, nodes)
    assert admin.get_job("j-avgm")["rounds_finalized"] == 2
    assert nodes[2].store.has(s1)              # fetched from another node and checked against the ledger's hash
    sim = simulate(spec)
    assert sim.rounds[-1].model_hash == admin.get_version("j-avgm", 2)["model_hash"]
