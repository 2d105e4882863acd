import base64
import json

import numpy as np
import pytest

from fedfabric.fl import fixedpoint
from fedfabric_cc import aggregation, codec, policy

from . import identities as ids
from .harness import ORGS, T0, Ledger, h, init, job_spec, meta_for, words
from .rounds_helper import open_and_register, reveal, secure_payloads, submit, vote_all

T = ids.trainer
SAMPLES = {"Org1MSP": 100, "Org2MSP": 300, "Org3MSP": 50}
CLOSE = T0 + 301  # registration closed at T0 (everyone registered), submission window is 300 s


def _secure(**over) -> Ledger:
    led = Ledger()
    init(led, balances=(0, 0, 0))
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(**over))
    return led


def _aggregate_words(led, r):
    got = led.call(T(ORGS[2]), "get_aggregate", "job1", r)
    data = base64.b64decode(got["data_b64"])
    assert codec.sha256_hex(data) == got["aggregate_hash"]
    return codec.to_signed(codec.unpack(data))


def _leader(led, r):
    return led.call(T(ORGS[0]), "get_round", "job1", r)["leader"]


def test_secure_round_with_dropout_recovers_exact_fedavg_of_survivors():
    led = _secure()
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    rng = np.random.default_rng(1)
    deltas = {m: rng.normal(0, 0.05, 8) for m in ORGS}
    payloads = secure_payloads(keys, {m: deltas[m] for m in ORGS[:2]}, SAMPLES, "job1", r, ORGS)
    submit(led, "job1", r, payloads, SAMPLES)  # Org3 drops out
    led.reject(T(_leader(led, r)), "aggregate", "job1", r, match="collecting until")
    led.reject(T(ORGS[0]), "aggregate", "job1", r, match="waiting for seed reveals from Org1MSP, Org2MSP",
               at=CLOSE)
    reveal(led, "job1", r, keys, ORGS[:2], ["Org3MSP"], at=CLOSE)
    rec = led.call(T(ORGS[2]), "aggregate", "job1", r, at=CLOSE)  # anyone may aggregate after the window
    assert rec["state"] == "aggregated" and rec["dropped"] == ["Org3MSP"] and rec["submitted"] == ORGS[:2]
    clear = codec.sum_mod([fixedpoint.encode_weighted(deltas[m], SAMPLES[m]) for m in ORGS[:2]])
    want = aggregation.fedavg_from_weighted_sum(clear, SAMPLES["Org1MSP"] + SAMPLES["Org2MSP"])
    assert np.array_equal(_aggregate_words(led, r), want)
    approx = (deltas["Org1MSP"] * 100 + deltas["Org2MSP"] * 300) / 400
    assert np.allclose(fixedpoint.decode(codec.from_signed(want)), approx, atol=1e-3)
    assert rec["aggregate"]["total_samples"] == 400
    assert led.last_event.name == "RoundAggregated"

    vote_all(led, "job1", r, h("v1"), approve=ORGS[:2], reject=ORGS[2:], at=CLOSE + 1)
    v = led.call(T(ORGS[0]), "finalize_round", "job1", r, at=CLOSE + 2)
    assert v["version"] == 1 and v["parents"] == [0] and v["parent_hash"] == h("v0")
    assert [c["msp_id"] for c in v["contributors"]] == ORGS[:2]
    # rewards by sample share (100:300 of 1000), absent Org3 slashed 10 stake
    assert v["rewards"] == {"Org1MSP": 250, "Org2MSP": 750} and v["slashed"] == {"Org3MSP": 10}
    orgs = {o["msp_id"]: o for o in led.call(ids.auditor(ORGS[0]), "list_orgs")}
    assert orgs["Org3MSP"]["stake"] == 90 and orgs["Org2MSP"]["balance"] == 750
    pol = led.call(ids.auditor(ORGS[0]), "get_policy")
    vk = led.stub.create_composite_key("version", ["job1", "000001"])
    assert policy.decode_envelope(led.stub.vparams[vk]) == [tuple(c) for c in pol["coalitions"]]
    # private payloads purged, public hashes kept
    for m in ORGS[:2]:
        k = led.stub.create_composite_key("upd", ["job1", "000001", m])
        assert ("fedfabricUpdates", k) in led.stub.purged and k not in led.stub.private["fedfabricUpdates"]
        assert json.loads(led.stub.state[k])["sha256"] == codec.sha256_hex(payloads[m])
    # the aggregate is in the collection that is never purged: members can still fetch it
    agg = led.call(T(ORGS[2]), "get_aggregate", "job1", r)
    assert agg["aggregate_hash"] == rec["aggregate"]["aggregate_hash"]
    assert not [p for p in led.stub.purged if p[0] == "fedfabricAggregates"]


def test_leader_only_before_window_and_early_aggregation_when_all_submitted():
    led = _secure()
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    deltas = {m: np.full(8, 0.01 * (i + 1)) for i, m in enumerate(ORGS)}
    submit(led, "job1", r, secure_payloads(keys, deltas, SAMPLES, "job1", r, ORGS), SAMPLES)
    leader = _leader(led, r)
    other = next(m for m in ORGS if m != leader)
    led.reject(T(other), "aggregate", "job1", r, match=f"only the round leader {leader}")
    rec = led.call(T(leader), "aggregate", "job1", r)
    clear = codec.sum_mod([fixedpoint.encode_weighted(deltas[m], SAMPLES[m]) for m in ORGS])
    assert np.array_equal(_aggregate_words(led, r), aggregation.fedavg_from_weighted_sum(clear, 450))
    assert rec["aggregate"]["sum_hash"] == codec.sha256_hex(codec.pack(clear))
    led.reject(T(leader), "aggregate", "job1", r, match="is aggregated, expected collecting")


def test_too_few_submissions_fail_the_round_and_slash_absentees():
    led = _secure()
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    submit(led, "job1", r, secure_payloads(keys, {"Org1MSP": np.zeros(8)}, SAMPLES, "job1", r, ORGS), SAMPLES)
    rec = led.call(T(ORGS[1]), "aggregate", "job1", r, at=CLOSE)
    assert rec["state"] == "failed" and "only 1 updates submitted" in rec["reason"]
    rep = led.call(ids.auditor(ORGS[0]), "org_report", "Org2MSP")
    assert rep["slashed"] == 10 and rep["participation"] == [{"job_id": "job1", "round": 1, "submitted": False}]
    assert led.call(T(ORGS[0]), "get_job", "job1")["latest_version"] == 0


def _aggregated_round(led):
    r, keys = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    deltas = {m: np.full(8, 0.01) for m in ORGS}
    submit(led, "job1", r, secure_payloads(keys, deltas, SAMPLES, "job1", r, ORGS), SAMPLES)
    led.call(T(_leader(led, r)), "aggregate", "job1", r)
    return r


def test_vote_rules_and_failed_vote_keeps_previous_version():
    led = _secure()
    r = _aggregated_round(led)
    ballot = {"approve": True, "model_hash": h("v1"), "metrics": {"val_acc_milli": 910}}
    led.reject(ids.auditor(ORGS[0]), "vote", "job1", r, ballot, match="auditors are read-only")
    led.reject(T(ORGS[0]), "vote", "job1", r, {"approve": True}, match="ballot.model_hash must be")
    led.reject(T(ORGS[0]), "vote", "job1", r, {"approve": 1, "model_hash": h("v1")}, match="approve must be")
    led.reject(T(ORGS[0]), "vote", "job1", r, dict(ballot, metrics={"acc": 0.9}), match="floats are not allowed")
    led.reject(T(ORGS[0]), "vote", "job1", r, ballot, match="too late", at=T0 + 121)
    led.call(T(ORGS[0]), "vote", "job1", r, ballot)
    led.reject(T(ORGS[0]), "vote", "job1", r, ballot, match="duplicate", status=409)
    led.reject(T(ORGS[0]), "finalize_round", "job1", r, match="vote undecided: best approval 100 of 300")
    led.call(T(ORGS[1]), "vote", "job1", r, {"approve": False})
    led.call(T(ORGS[2]), "vote", "job1", r, dict(ballot, model_hash=h("other")))
    rec = led.call(T(ORGS[0]), "finalize_round", "job1", r)  # no hash can reach 2/3 any more
    assert rec["state"] == "failed" and rec["reason"] == "approval quorum not reached"
    assert led.call(T(ORGS[0]), "get_version", "job1", "latest")["version"] == 0
    assert led.call(T(ORGS[0]), "get_job", "job1")["rounds_failed"] == 1


def test_approval_window_expiry_fails_undecided_round():
    led = _secure()
    r = _aggregated_round(led)
    led.call(T(ORGS[0]), "vote", "job1", r, {"approve": True, "model_hash": h("v1")})
    led.reject(T(ORGS[0]), "finalize_round", "job1", r, match="vote undecided")
    rec = led.call(T(ORGS[0]), "finalize_round", "job1", r, at=T0 + 121)
    assert rec["state"] == "failed"


def test_versions_lineage_aliases_tags_compare_and_reports():
    led = _secure(rounds=2)
    for i in (1, 2):
        r = _aggregated_round(led)
        vote_all(led, "job1", r, h(f"v{i}"))
        assert led.call(T(ORGS[0]), "finalize_round", "job1", r)["version"] == i
    assert led.call(T(ORGS[0]), "get_job", "job1")["status"] == "completed"
    led.reject(T(ORGS[0]), "open_round", "job1", match="job job1 is completed")
    lin = led.call(ids.auditor(ORGS[1]), "lineage", "job1", "2")
    assert [(x["version"], x["model_hash"]) for x in lin] == [(2, h("v2")), (1, h("v1")), (0, h("v0"))]
    led.call(ids.admin(ORGS[1]), "set_alias", "job1", "production", 1)
    assert led.call(T(ORGS[0]), "get_version", "job1", "production")["model_hash"] == h("v1")
    assert led.call(T(ORGS[0]), "list_aliases", "job1") == {"latest": 2, "production": 1}
    led.reject(ids.admin(ORGS[1]), "set_alias", "job1", "latest", 1, match="managed by the ledger")
    led.reject(ids.admin(ORGS[1]), "set_alias", "job1", "Prod!", 1, match="alias must match")
    led.reject(ids.admin(ORGS[1]), "set_alias", "job1", "prod", 9, match="version 9 of job job1 not found")
    led.reject(T(ORGS[1]), "set_alias", "job1", "prod", 1, match="role 'trainer'")
    v = led.call(ids.admin(ORGS[2]), "set_tag", "job1", 2, "stage", "candidate")
    assert v["tags"] == {"stage": "candidate"}
    led.reject(ids.admin(ORGS[2]), "set_tag", "job1", 2, "bad tag", "x", match="tag must match")
    cmp_ = led.call(ids.auditor(ORGS[0]), "compare_versions", "job1", "production", "latest")
    assert cmp_["lineage_related"] and not cmp_["same_model"] and cmp_["rounds"] == [1, 2]
    assert cmp_["metrics"]["Org1MSP"] == [{"val_acc_milli": 900}, {"val_acc_milli": 900}]
    assert [x["version"] for x in led.call(T(ORGS[0]), "list_versions", "job1")] == [0, 1, 2]
    led.reject(T(ORGS[0]), "get_version", "job1", "staging", match="no version or alias 'staging'")
    rep = led.call(ids.auditor(ORGS[0]), "round_report", "job1", 2)
    assert rep["round"]["state"] == "finalized" and rep["round"]["version"] == 2
    p = rep["participants"]["Org2MSP"]
    assert p["update"]["sample_count"] == 300 and p["vote"]["approve"] and p["register_tx"]
    rounds = led.call(ids.auditor(ORGS[0]), "list_rounds", "job1")
    assert [(x["round"], x["state"], x["version"]) for x in rounds] == [(1, "finalized", 1), (2, "finalized", 2)]
    org = led.call(ids.auditor(ORGS[0]), "org_report", "Org2MSP")
    assert org["rewards"] == 2 * 667 and len(org["participation"]) == 2
    hist = led.call(ids.auditor(ORGS[0]), "key_history", "job", ["job1"])
    assert [x["value"]["current_round"] for x in hist][:2] == [2, 2]
    led.reject(ids.auditor(ORGS[0]), "key_history", "secret", ["x"], match="unknown object type")


def test_every_transaction_emits_exactly_one_event():
    led = _secure(rounds=1)
    r = _aggregated_round(led)
    vote_all(led, "job1", r, h("v1"))
    led.call(T(ORGS[0]), "finalize_round", "job1", r)
    names = [e.name for e in led.stub.events]
    assert names == ["ConsortiumInitialized", "JobCreated", "RoundOpened", "RegistrationStarted",
                     "Registered", "Registered", "Registered", "CollectingStarted",
                     "UpdateSubmitted", "UpdateSubmitted", "UpdateSubmitted", "RoundAggregated",
                     "Voted", "Voted", "Voted", "JobCompleted"]
    done = led.last_event.json()  # the last round's finalize also completes the job: one event says both
    assert done["round_event"] == "RoundFinalized" and done["status"] == "completed" and done["version"] == 1
    assert done["rounds_finalized"] == 1 and done["latest_version"] == 1 and "rewards" in done
    assert all(json.loads(e.payload)["tx_id"] == e.tx_id for e in led.stub.events)
    assert all(e.payload == json.dumps(json.loads(e.payload), sort_keys=True, separators=(",", ":")).encode()
               for e in led.stub.events)


# ---- clear mode
def _clear(rule: dict, min_participants=3) -> Ledger:
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(privacy="clear", aggregation=rule,
                                                        min_participants=min_participants, max_abs=1 << 20))
    return led


def _clear_round(led, vals: dict[str, list[int]]):
    r, _ = open_and_register(led, "job1")
    led.call(T(ORGS[0]), "close_registration", "job1", r)
    for m, v in vals.items():
        p = words(v)
        led.call(T(m), "submit_update", "job1", r, meta_for(p, SAMPLES[m]), transient={"update": p})
    return r, led.call(T(_leader(led, r)), "aggregate", "job1", r)


@pytest.mark.parametrize("rule,want,anomalous", [
    ({"rule": "fedavg"}, (100 * 10 + 300 * 20 + 50 * 5000 + 225) // 450, ["Org3MSP"]),
    ({"rule": "median"}, 20, ["Org3MSP"]),
    ({"rule": "trimmed_mean", "trim": 1}, 20, ["Org3MSP"]),
])
def test_clear_mode_rules_and_anomaly_slashing(rule, want, anomalous):
    led = _clear(rule)
    vals = {"Org1MSP": [10] * 8, "Org2MSP": [20] * 8, "Org3MSP": [5000] * 8}
    r, rec = _clear_round(led, vals)
    assert list(_aggregate_words(led, r)) == [want] * 8
    assert rec["aggregate"]["anomalous"] == anomalous
    vote_all(led, "job1", r, h("v1"))
    v = led.call(T(ORGS[0]), "finalize_round", "job1", r)
    assert sum(v["rewards"].values()) == 1000
    if anomalous:
        assert v["slashed"] == {"Org3MSP": 20} and "Org3MSP" not in v["rewards"]


def test_clear_mode_multi_krum_excludes_outlier():
    led = Ledger()
    init(led, stakes=(100, 100, 100))
    led.call(ids.admin(ORGS[0]), "create_job", job_spec(privacy="clear", aggregation={"rule": "multi_krum", "krum_f": 0, "krum_m": 2},
                                                        min_participants=3, max_abs=1 << 20))
    r, rec = _clear_round(led, {"Org1MSP": [10] * 8, "Org2MSP": [12] * 8, "Org3MSP": [9000] * 8})
    assert rec["aggregate"]["anomalous"] == ["Org3MSP"]
    assert list(_aggregate_words(led, r)) == [11] * 8
    assert set(rec["aggregate"]["loo"]) == set(ORGS)
