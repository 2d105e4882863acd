"""Live: the product contract ``fedfabric`` on a real Fabric network, through the Gateway (protocol v2).

Uses the session's ``live_network``; deploys the product chaincode (stake-weighted 2-of-3 policy,
the private collection ``fedfabricUpdates`` with ``maxPeerCount`` 0) if it is
not deployed yet, and initializes the consortium once (tolerating another test file having done it).
Every test uses its own job ids, so the tests can share the network with other live test files.
"""
from __future__ import annotations

import json
import time
from typing import Iterator

import pytest

from fedfabric.client import Rejected, open_client
from fedfabric.ledger import CommitError
from fedfabric_cc.policy import compile_policy
from fedfabric_protocol import codec

from . import helpers as H

pytestmark = pytest.mark.live

NUM_PARAMS = 1000


@pytest.fixture(scope="module")
def cons(live_network) -> Iterator[H.Consortium]:
    with H.initialized_consortium(live_network) as c:
        orgs = {o["msp_id"]: o for o in c.first().trainer.list_orgs()}
        assert set(c.msps) <= set(orgs), orgs
        c.wait_endorsers()
        yield c


@pytest.fixture(scope="module")
def job(cons: H.Consortium) -> Iterator[tuple[H.LiveJob, list[H.RoundRun]]]:
    """A fresh 3-round secure job driven through the Gateway the way the nodes drive it."""
    lj = H.LiveJob(cons, H.secure_job_spec(H.uid("live-v2"), NUM_PARAMS, window_s=120, rounds=3))
    lj.create()
    runs = [lj.start()]
    lj.full_round(runs[0], seed=7)
    for r in (2, 3):
        runs.append(lj.full_round(H.RoundRun(r), seed=7 + r))
    yield lj, runs
    lj.close()


def _block_of(cons: H.Consortium, tx_id: str) -> int:
    return cons.first().network.qscc().block_by_tx_id(tx_id)["number"]


# ---- 1. whole secure rounds --------------------------------------------------------------------
def test_every_round_is_fedavg_bit_for_bit_recomputed_by_the_endorsers(cons, job) -> None:
    lj, runs = job
    for run in runs:
        expected = H.expected_fedavg(run.encoded, run.samples)
        assert run.result.aggregate_hash == codec.sha256_hex(expected)
        assert run.closed["state"] == "finalized" and run.closed["outcome"]["aggregate"]["recomputed"] is True
        for m in cons.msps:
            v = cons.parties[m].trainer.get_version(lj.job_id, run.round)
            assert v["aggregate_hash"] == codec.sha256_hex(expected), m
        for m, p in run.payloads.items():   # masking really happened
            assert p != codec.pack(run.encoded[m])


def test_three_ordered_phases_per_round_and_no_invalid_transaction(cons, job) -> None:
    lj, runs = job
    party = cons.first()
    assert H.invalid_transactions(party, lj.created.block_number, runs[-1].last_block) == []
    for run in runs[1:]:   # a normal round: submissions, ballots (with next keys), finalize -- no registration
        assert sorted(run.writes) == sorted([f"submit:{m}" for m in cons.msps] + [f"vote:{m}" for m in cons.msps]
                                            + ["finalize"])
        assert run.closed["outcome"]["voted"] == cons.msps
    nxt = lj.round_record(3)
    assert nxt.state.value == "finalized" and nxt.participants == tuple(cons.msps)


def test_versions_lineage_and_report_name_every_transaction(cons, job) -> None:
    lj, runs = job
    c = cons.first().trainer
    v = c.get_version(lj.job_id, "latest")
    assert v["version"] == 3 and v["aggregate_hash"] == runs[-1].result.aggregate_hash and v["parents"] == [2]
    assert [x["version"] for x in c.lineage(lj.job_id, "latest")] == [3, 2, 1, 0]
    run = runs[1]
    v2 = c.get_version(lj.job_id, 2)
    assert v2["tx_ids"]["finalize"] == run.writes["finalize"].tx_id
    assert v2["tx_ids"]["updates"] == {m: run.writes[f"submit:{m}"].tx_id for m in cons.msps}
    assert v2["tx_ids"]["votes"] == {m: run.writes[f"vote:{m}"].tx_id for m in cons.msps}
    assert v2["tx_ids"]["opened"] == v2["tx_ids"]["started"] == runs[0].writes["finalize"].tx_id
    report = c.round_report(lj.job_id, 2)
    for m in cons.msps:
        p = report["participants"][m]
        assert p["update"]["tx_id"] == run.writes[f"submit:{m}"].tx_id
        assert p["update"]["sha256"] == H.h(run.payloads[m]) and p["update"]["size"] == 4 * NUM_PARAMS
        assert p["vote"]["tx_id"] == run.writes[f"vote:{m}"].tx_id and p["vote"]["approve"] is True
        assert _block_of(cons, p["vote"]["tx_id"]) == run.writes[f"vote:{m}"].block_number
        assert p["next_round_key"] == lj.key(m, 3).hex()


def test_events_carry_what_the_nodes_act_on(cons, job) -> None:
    lj, runs = job
    party = cons.parties[cons.msps[-1]]  # read the stream from another org's peer
    got = []
    with party.network.chaincode_events(H.CHAINCODE, start_block=lj.created.block_number, timeout=30) as stream:
        for ev in stream:
            body = json.loads(ev.payload)
            if body.get("job_id") == lj.job_id:
                got.append((ev.event_name, body))
            if ev.event_name == "JobCompleted" and body.get("job_id") == lj.job_id:
                break
    names = [n for n, _ in got]
    assert names[:5] == ["JobCreated", "Registered", "Registered", "Registered", "RoundStarted"]
    assert names.count("UpdateSubmitted") == 9 and names.count("Voted") == 9
    assert names.count("RoundFinalized") == 2 and names[-1] == "JobCompleted"
    fin = next(b for n, b in got if n == "RoundFinalized")
    assert fin["next"]["state"] == "collecting" and sorted(fin["next"]["public_keys"]) == cons.msps
    assert fin["next"]["public_keys"] == {m: lj.key(m, 2).hex() for m in cons.msps}


# ---- 2. time cannot be forged past honest endorsers ---------------------------------------------
@pytest.fixture(scope="module")
def timed_jobs(cons: H.Consortium):
    """Job A: registering, Org3 not registered, its window closed. Job B: collecting, nobody submitted yet."""
    a = H.LiveJob(cons, H.secure_job_spec(H.uid("live-time-a"), 100, rounds=2,
                                          windows={"registration_s": 3, "submission_s": 300, "approval_s": 300}))
    a.create()
    a.parallel(lambda m: cons.parties[m].trainer.register(a.job_id, 1, a.key(m, 1)), cons.msps[:2])
    b = H.LiveJob(cons, H.secure_job_spec(H.uid("live-time-b"), 100, rounds=2, window_s=300))
    b.create()
    b.start()
    time.sleep(max(0.0, a.round_record(1).deadlines.register_by + 1.5 - time.time()))
    yield a, b
    a.close()
    b.close()


@pytest.mark.parametrize("offset", [3600, -60, None], ids=["+1h", "-60s", "1970"])
def test_forged_timestamps_are_refused_at_endorsement_and_change_nothing(cons, timed_jobs, offset) -> None:
    """The attacks of the issue, as a hostile member would send them: registering after the window closed
    (backdated), starting a round early, expiring (closing) another job's live round early, voting out of
    time -- with the client's clock set +1 h, -60 s, or to 1970."""
    a, b = timed_jobs
    trainer = cons.parties[cons.msps[2]].trainer
    now = int(time.time())
    at = 0 if offset is None else now + offset
    heights = cons.heights()
    attacks = (("register", [a.job_id, "1", "ab" * 32]), ("start_round", [a.job_id, "1"]),
               ("finalize_round", [b.job_id, "1"]), ("vote", [b.job_id, "1", '{"approve": false}']))
    for fn, args in attacks:
        err = H.endorse_at(trainer, fn, args, at)
        assert isinstance(err, Rejected) and "clock skew" in err.message and err.status == 400, (fn, err)
    assert cons.heights() == heights
    assert a.round_record(1).state.value == "registration" and b.round_record(1).state.value == "collecting"
    assert b.round_record(1).outcome is None
    # and with an honest clock the contract's own time rules decide
    with pytest.raises(Rejected, match="too late: registration for round 1"):
        trainer.register(a.job_id, 1, a.key(cons.msps[2], 1))
    with pytest.raises(Rejected, match="collecting until"):
        trainer.finalize_round(b.job_id, 1)


# ---- 3. endorsement policies enforced by the peers ----------------------------------------------
def test_single_org_endorsement_fails_key_level_policy(cons, job) -> None:
    lj, _ = job
    admin = cons.first().admin
    before = admin.get_version(lj.job_id, 1)
    history = admin.key_history("version", [lj.job_id, "000001"])
    with pytest.raises(CommitError) as ei:
        admin.contract.submit("set_tag", args=[lj.job_id, "1", "stage", "production"], endorsing_orgs=["Org1MSP"])
    assert ei.value.code == "ENDORSEMENT_POLICY_FAILURE", ei.value
    cons.wait_synced(ei.value.block_number + 1)
    tx = cons.parties[cons.msps[-1]].network.qscc().transaction(ei.value.tx_id)
    assert tx["validation_code"] == "ENDORSEMENT_POLICY_FAILURE"
    for m in cons.msps:
        assert cons.parties[m].trainer.get_version(lj.job_id, 1) == before
    assert admin.key_history("version", [lj.job_id, "000001"]) == history
    policy = admin.get_policy()
    stakes = {o["msp_id"]: o["stake"] for o in admin.list_orgs() if o["status"] == "active"}
    assert {k: v for k, v in policy.items() if k != "lifecycle"} == compile_policy(stakes, 2, 3)
    ok = cons.synced(admin.set_tag(lj.job_id, 1, "stage", "production"))   # endorsed by its own coalition
    assert ok.value["tags"] == {"stage": "production"}


def test_single_org_endorsement_fails_chaincode_policy(cons) -> None:
    admin = cons.first().admin
    job_id = H.uid("live-1org")
    spec = json.dumps(H.secure_job_spec(job_id, NUM_PARAMS), sort_keys=True, separators=(",", ":"))
    with pytest.raises(CommitError) as ei:
        admin.contract.submit("create_job", args=[spec], endorsing_orgs=["Org2MSP"])
    assert ei.value.code == "ENDORSEMENT_POLICY_FAILURE", ei.value
    cons.wait_synced(ei.value.block_number + 1)
    for m in cons.msps:
        with pytest.raises(Rejected, match=f"job {job_id} not found"):
            cons.parties[m].trainer.get_job(job_id)
    res = admin.contract.submit("create_job", args=[spec], endorsing_orgs=["Org1MSP", "Org3MSP"])
    assert json.loads(res.result)["job_id"] == job_id


# ---- 4. the auditor reads but never writes --------------------------------------------------------
def test_auditor_is_read_only(live_network, cons, job) -> None:
    lj, runs = job
    layout = live_network.layout
    gw, auditor = open_client("org2", "Auditor", config=layout.config, run_root=layout.root)
    with gw:
        heights = cons.heights()
        with pytest.raises(Rejected) as ei:
            auditor.create_job(H.secure_job_spec(H.uid("live-audit"), NUM_PARAMS))
        assert ei.value.message == "create_job: auditors are read-only" and ei.value.status == 403
        with pytest.raises(Rejected, match="set_tag: auditors are read-only"):
            auditor.set_tag(lj.job_id, 1, "audited", "yes")
        with pytest.raises(Rejected, match="finalize_round: auditors are read-only"):
            auditor.finalize_round(lj.job_id, 3)
        with pytest.raises(Rejected, match="get_update: auditors are read-only"):
            auditor.get_update(lj.job_id, 3, "Org1MSP")
        assert cons.heights() == heights
        assert auditor.get_version(lj.job_id, 1)["model_hash"] == runs[0].result.model_hash
        assert auditor.round_report(lj.job_id, 1)["round"]["state"] == "finalized"
        assert auditor.get_version(lj.job_id, 1)["aggregate_hash"] == \
            codec.sha256_hex(H.expected_fedavg(runs[0].encoded, runs[0].samples))


# ---- 5. payloads leave the peers when the round closes, hashes stay --------------------------------
def test_payloads_are_purged_at_close_and_their_hashes_stay(cons, job) -> None:
    lj, runs = job
    run = runs[0]
    for m in cons.msps:
        c = cons.parties[m].trainer
        with pytest.raises(Rejected) as ei:
            c.get_update(lj.job_id, 1, cons.msps[0])
        assert ei.value.status == 503 and "not available on this peer" in ei.value.message
        rep = c.round_report(lj.job_id, 1)
        assert {x: rep["participants"][x]["update"]["sha256"] for x in cons.msps} == \
            {x: H.h(run.payloads[x]) for x in cons.msps}


# ---- 6. bad input over the live path changes nothing ------------------------------------------------
def test_bad_submission_rejected_and_ledger_unchanged(cons) -> None:
    lj = H.LiveJob(cons, H.secure_job_spec(H.uid("live-bad"), NUM_PARAMS, window_s=300))
    lj.create()
    lj.start()
    m = cons.msps[0]
    c = cons.parties[m].trainer
    payload = codec.pack(codec.from_signed(__import__("numpy").arange(NUM_PARAMS)))
    other = payload[4:] + payload[:4]
    good = H.update_meta(payload, NUM_PARAMS, 100, 0)
    heights = cons.heights()
    before = c.get_round(lj.job_id, 1)
    cases = [
        (dict(good, sha256=H.h(other)), payload,
         f"hash mismatch: the payload hashes to {H.h(payload)}, meta.sha256 is {H.h(other)}"),
        (dict(good, size=len(payload) + 4), payload, f"wrong length: meta.size={len(payload) + 4}"),
        (dict(good, shape_digest=H.h("other shape")), payload, "wrong shape: shape digest"),
        (dict(good, sample_count=1.5), payload, "floats are not allowed on the ledger"),
        (good, None, "the update payload must be in the transient map"),
    ]
    for meta, data, message in cases:
        with pytest.raises(Rejected) as ei:
            c.submit_update(lj.job_id, 1, meta, data)
        assert message in ei.value.message, ei.value
        assert ei.value.status == 400
    with pytest.raises(Rejected, match="wrong round: job .* is at round 1, not 99"):
        c.submit_update(lj.job_id, 99, good, payload)
    time.sleep(0.5)  # a stray commit would have landed by now
    assert cons.heights() == heights
    assert c.get_round(lj.job_id, 1) == before
    w = cons.synced(c.submit_update(lj.job_id, 1, good, payload))   # the refusals consumed nothing
    assert w.value["sha256"] == H.h(payload)
    lj.close()


# ---- 7. a new rule and a server optimizer, recomputed by the endorsers --------------------------------
def test_a_secure_fedadam_job_finalizes_on_the_endorsed_step(cons) -> None:
    opt = {"kind": "adam", "lr": "0.01", "beta1": "0.9", "beta2": "0.99", "tau": "0.001"}
    lj = H.LiveJob(cons, H.secure_job_spec(H.uid("live-adam"), NUM_PARAMS, window_s=120, rounds=2,
                                           server_optimizer=opt))
    lj.create()
    c = cons.first().trainer
    v0 = c.get_version(lj.job_id, 0)
    assert v0["optimizer"]["state_hash"] == lj.opt.initial_state_hash(NUM_PARAMS)
    runs = [lj.full_round(lj.start(), seed=3)]
    runs.append(lj.full_round(H.RoundRun(2), seed=4))   # needs the state of version 1 in the transient map
    for r, run in enumerate(runs, 1):
        assert run.closed["state"] == "finalized", run.closed["outcome"]["reason"]
        ver = c.get_version(lj.job_id, r)
        assert (ver["optimizer"]["step_hash"], ver["optimizer"]["state_hash"]) == \
            (run.result.step_hash, run.result.state_hash)
        assert ver["aggregate_hash"] == run.result.aggregate_hash and ver["optimizer"]["kind"] == "adam"
    assert c.get_version(lj.job_id, 2)["optimizer"]["parent_state_hash"] == runs[0].result.state_hash
    first = runs[0].writes["register:Org1MSP"].block_number
    assert H.invalid_transactions(cons.first(), first, cons.first().height() - 1) == []
    lj.close()


@pytest.mark.parametrize("rule", [{"rule": "krum", "krum_f": 0}, {"rule": "bulyan", "bulyan_f": 0}])
def test_a_clear_krum_or_bulyan_round_is_recomputed_by_the_endorsers(cons, rule) -> None:
    lj = H.LiveJob(cons, H.secure_job_spec(H.uid(f"live-{rule['rule']}"), NUM_PARAMS, window_s=120, rounds=1,
                                           privacy="clear", aggregation=rule, min_participants=3))
    lj.create()
    run = lj.full_round(lj.start(), seed=11)
    assert run.closed["state"] == "finalized", run.closed["outcome"]["reason"]
    ver = cons.first().trainer.get_version(lj.job_id, 1)
    assert ver["rule"] == rule and ver["aggregate_hash"] == run.result.aggregate_hash
    assert run.closed["outcome"]["aggregate"]["recomputed"] is True
    lj.close()
