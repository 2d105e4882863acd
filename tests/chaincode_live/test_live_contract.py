"""Live: the product contract ``fedfabric`` on a real Fabric network, through the Gateway.

Uses the session's ``live_network``; deploys the product chaincode (stake-weighted 2-of-3 policy,
private collections ``fedfabricUpdates`` with blockToLive 20 and ``fedfabricAggregates`` kept) if it is
not deployed yet, and
initializes the consortium once (tolerating another test file having done it). Every test uses its
own job ids, so the tests can share the network with other live test files.
"""
from __future__ import annotations

import json
import time
from typing import Iterator

import numpy as np
import pytest

from fedfabric.client import Rejected, open_client, update_meta
from fedfabric.fl import fixedpoint
from fedfabric.ledger import CommitError
from fedfabric_cc import codec
from fedfabric_cc.policy import minimal_winning_coalitions

from . import helpers as H

pytestmark = pytest.mark.live

NUM_PARAMS = 1000
ROUND_EVENTS = ["JobCreated", "RoundOpened", "RegistrationStarted", "Registered", "Registered", "Registered",
                "CollectingStarted", "UpdateSubmitted", "UpdateSubmitted", "UpdateSubmitted", "RoundAggregated",
                "Voted", "Voted", "Voted", "RoundFinalized"]


@pytest.fixture(scope="module")
def cons(live_network) -> Iterator[H.Consortium]:
    with H.initialized_consortium(live_network) as c:
        orgs = {o["msp_id"]: o for o in c.first().trainer.list_orgs()}
        assert set(c.msps) <= set(orgs), orgs
        yield c


@pytest.fixture(scope="module")
def secure_round(cons: H.Consortium) -> H.RoundRun:
    """One full 3-org secure round of a fresh job, driven through the Gateway."""
    job_id = H.uid("live-secure")
    w_create = H.create_job(cons, H.secure_job_spec(job_id, NUM_PARAMS, window_s=60))
    run = H.register_round(cons, job_id)
    run.writes = {"create": w_create, **run.writes}
    H.submit_updates(cons, run, NUM_PARAMS, seed=7)
    H.aggregate(cons, run)
    run.per_peer = {m: H.fetch_aggregate(cons, run, m) for m in cons.msps}  # type: ignore[attr-defined]
    H.vote_and_finalize(cons, run)
    return run


def _block_of(cons: H.Consortium, tx_id: str) -> int:
    return cons.first().network.qscc().block_by_tx_id(tx_id)["number"]


# ---- 1. a whole secure round ----------------------------------------------------------------
def test_secure_round_aggregate_is_fedavg_bit_for_bit(cons: H.Consortium, secure_round: H.RoundRun) -> None:
    run = secure_round
    expected = H.expected_fedavg(run.encoded, run.samples)
    assert len(expected) == 4 * NUM_PARAMS
    for m, data in run.per_peer.items():  # type: ignore[attr-defined]
        assert data == expected, f"aggregate read from {m}'s peer differs from plain FedAvg"
    assert run.aggregate_hash == codec.sha256_hex(expected)
    # masking really happened: no submitted payload equals its unmasked encoding
    for m, p in run.payloads.items():
        assert p != run.encoded[m].astype("<u4").tobytes()
    # and the fixed-point FedAvg is the float FedAvg up to quantisation
    deltas = H.make_deltas(cons.msps, NUM_PARAMS, seed=7)
    ref = np.average(np.stack([deltas[m] for m in sorted(deltas)]), axis=0,
                     weights=[run.samples[m] for m in sorted(deltas)])
    got = fixedpoint.decode(np.frombuffer(expected, "<u4"))
    assert np.max(np.abs(got - ref)) < 1e-3


def test_secure_round_finalized_with_lineage_and_report(cons: H.Consortium, secure_round: H.RoundRun) -> None:
    run, c = secure_round, cons.first().trainer
    fin = run.writes["finalize"].value
    assert fin["version"] == 1 and fin["status"] == "finalized" and fin["model_hash"] == run.model_hash
    assert c.get_round(run.job_id, run.round)["state"] == "finalized"
    v = c.get_version(run.job_id, "latest")
    assert v["version"] == 1 and v["aggregate_hash"] == run.aggregate_hash and v["parents"] == [0]
    assert {x["msp_id"] for x in v["contributors"]} == set(cons.msps)
    assert {a["msp_id"] for a in v["approvals"] if a["approve"]} == set(cons.msps)
    job = c.get_job(run.job_id)
    lineage = c.lineage(run.job_id, "latest")
    assert [x["version"] for x in lineage] == [1, 0]
    assert lineage[1]["model_hash"] == job["spec"]["model"]["initial_hash"] and lineage[1]["status"] == "initial"
    assert lineage[0]["finalize_tx"] == run.writes["finalize"].tx_id
    assert lineage[1]["finalize_tx"] == run.writes["create"].tx_id

    report = c.round_report(run.job_id, run.round)
    tx_ids = report["round"]["tx_ids"]
    step_of = {"open": "open", "registration": "start_registration", "collecting": "close_registration",
               "aggregated": "aggregate", "finalized": "finalize"}
    assert set(tx_ids) == set(step_of)
    for state, step in step_of.items():
        assert tx_ids[state] == run.writes[step].tx_id
        assert _block_of(cons, tx_ids[state]) == run.writes[step].block_number
    for m in cons.msps:
        p = report["participants"][m]
        assert p["register_tx"] == run.writes[f"register:{m}"].tx_id
        assert p["update"]["tx_id"] == run.writes[f"submit:{m}"].tx_id
        assert p["update"]["sha256"] == H.h(run.payloads[m]) and p["update"]["size"] == 4 * NUM_PARAMS
        assert p["vote"]["tx_id"] == run.writes[f"vote:{m}"].tx_id and p["vote"]["approve"] is True
        assert _block_of(cons, p["update"]["tx_id"]) == run.writes[f"submit:{m}"].block_number
        assert _block_of(cons, p["vote"]["tx_id"]) == run.writes[f"vote:{m}"].block_number
    # the version record names every transaction of the round
    assert v["tx_ids"]["finalize"] == run.writes["finalize"].tx_id
    assert v["tx_ids"]["updates"] == {m: run.writes[f"submit:{m}"].tx_id for m in cons.msps}


def test_secure_round_events_for_every_transition(cons: H.Consortium, secure_round: H.RoundRun) -> None:
    run = secure_round
    party = cons.parties[cons.msps[-1]]  # read the stream from another org's peer
    got = []
    with party.network.chaincode_events(H.CHAINCODE, start_block=run.writes["create"].block_number,
                                        timeout=30) as stream:
        for ev in stream:
            body = json.loads(ev.payload)
            if body.get("job_id") != run.job_id:
                continue
            got.append(ev)
            if ev.event_name == "RoundFinalized":
                break
    assert [e.event_name for e in got] == ROUND_EVENTS
    order = ["create", "open", "start_registration", *[f"register:{m}" for m in cons.msps], "close_registration",
             *[f"submit:{m}" for m in cons.msps], "aggregate", *[f"vote:{m}" for m in cons.msps], "finalize"]
    by_tx = {e.tx_id: e for e in got}
    for step in order:
        w = run.writes[step]
        assert w.tx_id in by_tx, step
        assert by_tx[w.tx_id].block_number == w.block_number
        assert json.loads(by_tx[w.tx_id].payload)["tx_id"] == w.tx_id
    agg = json.loads(by_tx[run.writes["aggregate"].tx_id].payload)
    assert agg["aggregate_hash"] == run.aggregate_hash and agg["contributors"] == cons.msps
    coll = json.loads(by_tx[run.writes["close_registration"].tx_id].payload)
    assert coll["public_keys"] == {m: run.keys[m][1].hex() for m in cons.msps}


# ---- 2. endorsement policies enforced by the peers --------------------------------------------
def test_single_org_endorsement_fails_key_level_policy(cons: H.Consortium, secure_round: H.RoundRun) -> None:
    run, admin = secure_round, cons.first().admin
    contract = admin.contract
    cons.wait_endorsers(gateways=[cons.msps[0]])  # these requests name their endorsing orgs
    before = admin.get_version(run.job_id, 1)
    history = admin.key_history("version", [run.job_id, "000001"])
    with pytest.raises(CommitError) as ei:
        contract.submit("set_tag", args=[run.job_id, "1", "stage", "production"], endorsing_orgs=["Org1MSP"])
    assert ei.value.code == "ENDORSEMENT_POLICY_FAILURE", ei.value
    assert ei.value.block_number is not None
    cons.wait_synced(ei.value.block_number + 1)
    tx = cons.parties[cons.msps[-1]].network.qscc().transaction(ei.value.tx_id)
    assert tx["validation_code"] == "ENDORSEMENT_POLICY_FAILURE" and tx["block_number"] == ei.value.block_number
    for m in cons.msps:
        assert cons.parties[m].trainer.get_version(run.job_id, 1) == before
    assert admin.key_history("version", [run.job_id, "000001"]) == history
    # the policy on the key is the compiled stake rule (of the stakes now: other live test files on this
    # network may have slashed an org); a stake majority endorsing makes it valid
    policy = admin.get_policy()
    stakes = {o["msp_id"]: o["stake"] for o in admin.list_orgs() if o["status"] == "active"}
    assert policy["threshold"] == [2, 3]
    assert [tuple(c) for c in policy["coalitions"]] == minimal_winning_coalitions(stakes, 2, 3)
    if len(set(stakes.values())) == 1:   # an untouched consortium of three equal orgs: every pair
        assert len(policy["coalitions"]) == 3
    ok = cons.synced(admin.set_tag(run.job_id, 1, "stage", "production"))
    assert ok.value["tags"] == {"stage": "production"}


def test_single_org_endorsement_fails_chaincode_policy(cons: H.Consortium) -> None:
    admin = cons.first().admin
    cons.wait_endorsers(gateways=[cons.msps[0]])
    job_id = H.uid("live-1org")
    spec = json.dumps(H.secure_job_spec(job_id, NUM_PARAMS), sort_keys=True, separators=(",", ":"))
    with pytest.raises(CommitError) as ei:
        admin.contract.submit("create_job", args=[spec], endorsing_orgs=["Org2MSP"])
    assert ei.value.code == "ENDORSEMENT_POLICY_FAILURE", ei.value
    cons.wait_synced(ei.value.block_number + 1)
    for m in cons.msps:
        with pytest.raises(Rejected, match=f"job {job_id} not found"):
            cons.parties[m].trainer.get_job(job_id)
    # two orgs (a 2/3 stake coalition) endorsing the very same transaction is fine
    res = admin.contract.submit("create_job", args=[spec], endorsing_orgs=["Org1MSP", "Org3MSP"])
    assert json.loads(res.result)["job_id"] == job_id


# ---- 3. the auditor reads but never writes ---------------------------------------------------
def test_auditor_is_read_only(live_network, cons: H.Consortium, secure_round: H.RoundRun) -> None:
    run = secure_round
    layout = live_network.layout
    gw, auditor = open_client("org2", "Auditor", config=layout.config, run_root=layout.root)
    with gw:
        heights = cons.heights()
        with pytest.raises(Rejected) as ei:
            auditor.create_job(H.secure_job_spec(H.uid("live-audit"), NUM_PARAMS))
        assert ei.value.message == "create_job: auditors are read-only" and ei.value.status == 403
        with pytest.raises(Rejected, match="set_tag: auditors are read-only"):
            auditor.set_tag(run.job_id, 1, "audited", "yes")
        with pytest.raises(Rejected, match="open_round: auditors are read-only"):
            auditor.open_round(run.job_id)
        assert cons.heights() == heights
        # reads work
        assert set(cons.msps) <= {o["msp_id"] for o in auditor.list_orgs()}
        assert auditor.get_version(run.job_id, 1)["model_hash"] == run.model_hash
        assert auditor.round_report(run.job_id, run.round)["round"]["state"] == "finalized"
        assert [x["version"] for x in auditor.lineage(run.job_id, "latest")] == [1, 0]
        _, data = auditor.get_aggregate(run.job_id, run.round)
        assert data == run.aggregate


# ---- 4. private payloads purged after blockToLive, hashes kept --------------------------------
def test_private_data_purged_hash_kept(cons: H.Consortium) -> None:
    # job Q: three updates that nobody aggregates; job P: aggregated
    q_id, p_id = H.uid("live-purge-q"), H.uid("live-purge-p")
    for job_id in (q_id, p_id):
        H.create_job(cons, H.secure_job_spec(job_id, NUM_PARAMS, window_s=300))
    q = H.submit_updates(cons, H.register_round(cons, q_id), NUM_PARAMS, seed=1)
    p = H.submit_updates(cons, H.register_round(cons, p_id), NUM_PARAMS, seed=2)
    H.aggregate(cons, p)
    assert H.fetch_aggregate(cons, p) == H.expected_fedavg(p.encoded, p.samples)
    last_private = p.writes["aggregate"].block_number

    # BTL 20: data committed in block N is purged when block N + 21 commits; go a little past it
    block_to_live = cons.layout.config.chaincode.updates_block_to_live
    target = last_private + block_to_live + 3
    admin = cons.first().admin
    i = 0
    while cons.first().height() < target:
        w = admin.set_alias(p.job_id, f"tick{i}", 0)
        i += 1
        assert w.block_number > last_private
    cons.wait_synced(target)

    for m in cons.msps:
        c = cons.parties[m].trainer
        # the aggregate lives in the collection that is never purged: still there for a late node
        assert H.fetch_aggregate(cons, p, msp=m) == H.expected_fedavg(p.encoded, p.samples)
        # the public record stays: update hashes and the aggregate hash
        rec = c.get_round(p.job_id, p.round)
        assert rec["aggregate"]["aggregate_hash"] == p.aggregate_hash
        assert {x["msp_id"]: x["update_hash"] for x in rec["aggregate"]["contributors"]} == \
            {x: H.h(p.payloads[x]) for x in cons.msps}
        rep = c.round_report(q.job_id, q.round)
        assert {x: rep["participants"][x]["update"]["sha256"] for x in cons.msps} == \
            {x: H.h(q.payloads[x]) for x in cons.msps}
    # the updates themselves are gone: aggregating Q now fails on every endorser
    heights = cons.heights()
    with pytest.raises(Rejected) as ei:
        cons.parties[q.leader].trainer.aggregate(q.job_id, q.round)
    assert ei.value.status == 503
    assert ei.value.message == f"the private payload of {cons.msps[0]} is not available on this peer"
    assert cons.heights() == heights
    assert cons.first().trainer.get_round(q.job_id, q.round)["state"] == "collecting"


# ---- 5. bad input over the live path changes nothing -----------------------------------------
def test_bad_submission_rejected_and_ledger_unchanged(cons: H.Consortium) -> None:
    job_id = H.uid("live-bad")
    H.create_job(cons, H.secure_job_spec(job_id, NUM_PARAMS, window_s=300))
    run = H.register_round(cons, job_id)
    m = cons.msps[0]
    c = cons.parties[m].trainer
    opened_at = run.writes["open"].value["times"]["open"]
    shape = codec.shape_digest(H.shape_of(NUM_PARAMS))
    payload = np.arange(NUM_PARAMS, dtype="<u4").tobytes()
    other = np.arange(1, NUM_PARAMS + 1, dtype="<u4").tobytes()
    good = update_meta(payload, shape, 100, H.training_facts(opened_at, 0))

    heights = cons.heights()
    round_before = c.get_round(job_id, run.round)
    cases = [
        (dict(good, sha256=H.h(other)), payload,
         f"hash mismatch: the payload hashes to {H.h(payload)}, meta.sha256 is {H.h(other)}"),
        (good, payload[:-4], f"wrong length: {NUM_PARAMS - 1} values, expected {NUM_PARAMS}"),
        (dict(good, size=len(payload) + 4), payload,
         f"size mismatch: meta.size={len(payload) + 4} but the payload has {len(payload)} bytes"),
        (dict(good, shape_digest=H.h("other shape")), payload,
         f"wrong shape: shape digest {H.h('other shape')} differs from the job's {shape}"),
        (dict(good, sample_count=1.5), payload, "floats are not allowed on the ledger"),
    ]
    for meta, data, message in cases:
        with pytest.raises(Rejected) as ei:
            c.submit_update(job_id, run.round, meta, data)
        assert message in ei.value.message, ei.value
        assert ei.value.status == 400
    with pytest.raises(Rejected, match="wrong round: job .* is at round 1, not 99"):
        c.submit_update(job_id, 99, good, payload)
    time.sleep(0.5)  # a stray commit would have landed by now
    assert cons.heights() == heights
    assert c.get_round(job_id, run.round) == round_before
    assert c.round_report(job_id, run.round)["participants"][m]["update"] is None
    # the same org can still submit a correct update: the refusals consumed nothing
    w = cons.synced(c.submit_update(job_id, run.round, good, payload))
    assert w.value["sha256"] == H.h(payload)


# ---- 6. liveness: a stuck round is failed by transaction time, through the Gateway ---------------
def test_stuck_round_expires_and_completes_the_job(cons: H.Consortium) -> None:
    job_id = H.uid("live-expire")
    spec = H.secure_job_spec(job_id, NUM_PARAMS, rounds=1,
                             windows={"registration_s": 3, "submission_s": 60, "approval_s": 60})
    w_create = H.create_job(cons, spec)
    c = cons.parties[cons.msps[1]].trainer
    w_open = cons.synced(cons.first().trainer.open_round(job_id))
    deadline = w_open.value["deadlines"]["open"]
    assert deadline == w_open.value["times"]["open"] + 3
    with pytest.raises(Rejected) as ei:
        c.expire_round(job_id, 1)
    assert ei.value.status == 409 and "nothing to expire yet" in ei.value.message
    time.sleep(max(0.0, deadline + 1.5 - time.time()))
    w = cons.synced(c.expire_round(job_id, 1))
    assert w.value["state"] == "failed" and w.value["failed_from"] == "open"
    assert w.value["reason"] == f"registration was not started by the deadline {deadline}"
    for m in cons.msps:
        job = cons.parties[m].trainer.get_job(job_id)
        assert job["status"] == "completed" and job["rounds_failed"] == 1
    found = None
    with cons.parties[cons.msps[-1]].network.chaincode_events(H.CHAINCODE, start_block=w_create.block_number,
                                                              timeout=30) as stream:
        for ev in stream:
            if ev.tx_id == w.tx_id:
                found = (ev.event_name, json.loads(ev.payload))
                break
    assert found is not None, "no event for the expire_round transaction"
    name, body = found
    assert name == "JobCompleted" and body["round_event"] == "RoundFailed"
    assert body["reason"] == w.value["reason"] and body["rounds_failed"] == 1
