import json

import numpy as np

from fedfabric_cc import codec

from . import identities as ids
from .harness import ORGS, T0, Ledger, h, init, job_spec, meta_for, words

T = ids.trainer


def _collecting(privacy="secure", **over) -> Ledger:
    led = Ledger()
    init(led)
    spec = job_spec(privacy=privacy, **over)
    if privacy == "clear":
        spec.setdefault("max_abs", 1000)
    led.call(ids.admin(ORGS[0]), "create_job", spec)
    led.call(T(ORGS[0]), "open_round", "job1")
    led.call(T(ORGS[0]), "start_registration", "job1", 1)
    led.call(T(ORGS[0]), "register", "job1", 1, "11" * 32)
    led.call(T(ORGS[1]), "register", "job1", 1, "22" * 32)
    led.call(T(ORGS[0]), "close_registration", "job1", 1, at=T0 + 61)
    led.t = T0 + 70
    return led


GOOD = words([1, -2, 3, -4, 5, -6, 7, -8])


def test_accepted_submission_stores_private_payload_and_public_metadata():
    led = _collecting()
    rec = led.call(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD), transient={"update": GOOD})
    assert rec["sha256"] == codec.sha256_hex(GOOD) and rec["size"] == 32 and rec["sample_count"] == 100
    assert rec["training"]["loss_per_epoch"] == [693147, 512000] and rec["submitted_at"] == T0 + 70
    k = led.stub.create_composite_key("upd", ["job1", "000001", "Org1MSP"])
    assert led.stub.private["fedfabricUpdates"][k] == GOOD
    assert json.loads(led.stub.state[k])["sha256"] == codec.sha256_hex(GOOD)
    ev = led.last_event
    assert ev.name == "UpdateSubmitted" and "update" not in ev.json()


def test_rejections_each_with_a_specific_error():
    led = _collecting()
    m = meta_for(GOOD)
    u = {"update": GOOD}
    led.reject(ids.trainer("Org9MSP"), "submit_update", "job1", 1, m, transient=u, match="not a member")
    led.reject(ids.auditor(ORGS[0]), "submit_update", "job1", 1, m, transient=u, match="auditors are read-only")
    led.reject(T(ORGS[2]), "submit_update", "job1", 1, m, transient=u, match="Org3MSP is not registered")
    led.reject(T(ORGS[0]), "submit_update", "job1", 2, m, transient=u, match="wrong round")
    led.reject(T(ORGS[0]), "submit_update", "nojob", 1, m, transient=u, match="job nojob not found")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, m, transient=u, match="too late", at=T0 + 61 + 301)
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, m, match="transient map under 'update'")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, m, transient={"update": GOOD[:-1]},
               match="wrong dtype: 31 bytes")
    short = words([1, 2, 3])
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(short), transient={"update": short},
               match="wrong length: 3 values, expected 8")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, dtype="float32"), transient=u,
               match="wrong dtype: meta.dtype")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, size=33), transient=u, match="size mismatch")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, shape_digest=h("x")), transient=u,
               match="wrong shape")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, sha256=h("x")), transient=u,
               match="hash mismatch")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, sample_count=0), transient=u,
               match="meta.sample_count=0 out of range")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, metrics={"acc": 0.9}), transient=u,
               match="meta.metrics.acc: floats are not allowed")
    bad_training = dict(m["training"], loss_per_epoch=[1])
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, training=bad_training), transient=u,
               match="loss_per_epoch must be 2 integers")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, training=dict(m["training"], end=T0 - 1)),
               transient=u, match="meta.training.end")
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, dict(m, extra=1), transient=u, match="unknown field(s) extra")
    led.call(T(ORGS[0]), "submit_update", "job1", 1, m, transient=u)
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, m, transient=u, match="duplicate", status=409)


def test_clear_mode_rejects_non_finite_and_out_of_range():
    led = _collecting("clear")
    nf = codec.pack(np.array([0, 0, 0, 1 << 31, 0, 0, 0, 0], dtype=np.uint32))
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(nf), transient={"update": nf},
               match="non-finite value at index 3")
    big = words([0, 0, 0, 0, 0, -1001, 0, 0])
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(big), transient={"update": big},
               match="value out of range at index 5: |-1001| > 1000")
    ok = words([0, 0, 0, 0, 0, -1000, 0, 0])
    led.call(T(ORGS[0]), "submit_update", "job1", 1, meta_for(ok), transient={"update": ok})


def test_secure_mode_accepts_any_word_because_masked():
    led = _collecting()
    masked = codec.pack(np.array([1 << 31] * 8, dtype=np.uint32))
    led.call(T(ORGS[0]), "submit_update", "job1", 1, meta_for(masked), transient={"update": masked})


def test_dp_jobs_require_epsilon():
    led = _collecting(dp={"enabled": True, "clip_norm_milli": 1000, "noise_multiplier_milli": 1100,
                          "epsilon_budget_milli": 8000})
    led.reject(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD), transient={"update": GOOD},
               match="dp_epsilon_milli is required")
    led.call(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD, dp_epsilon_milli=1500), transient={"update": GOOD})


def test_reveal_seed_rejections():
    led = _collecting()
    led.call(T(ORGS[0]), "submit_update", "job1", 1, meta_for(GOOD), transient={"update": GOOD})
    seeds = {"seeds": json.dumps({"Org2MSP": "ab" * 32}).encode()}
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, transient=seeds, match="reveal after it closes")
    late = T0 + 61 + 301
    led.reject(T(ORGS[1]), "reveal_seeds", "job1", 1, transient=seeds, match="only survivors reveal", at=late)
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, match="transient map under 'seeds'", at=late)
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, transient={"seeds": b"{"}, match="not valid JSON", at=late)
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, transient={"seeds": b'{"Org3MSP": "00"}'},
               match="cover exactly the dropped participants ['Org2MSP']", at=late)
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, transient={"seeds": b'{"Org2MSP": "00"}'},
               match="seed for Org2MSP must be 32 bytes", at=late)
    led.call(T(ORGS[0]), "reveal_seeds", "job1", 1, transient=seeds, at=late)
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, transient=seeds, match="already revealed", at=late)


def test_reveal_refused_in_clear_mode_and_when_nobody_dropped():
    led = _collecting("clear")
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, match="only in secure mode", at=T0 + 400)
    led = _collecting()
    for m in ORGS[:2]:
        led.call(T(m), "submit_update", "job1", 1, meta_for(GOOD), transient={"update": GOOD})
    led.reject(T(ORGS[0]), "reveal_seeds", "job1", 1, match="nobody dropped out", at=T0 + 400)
