import base64

import numpy as np

from fedfabric.fl import fixedpoint
from fedfabric_cc import aggregation, codec

from . import identities as ids
from .harness import ORGS, Ledger, h, init, job_spec
from .rounds_helper import open_and_register, secure_payloads, submit, vote_all


def test_secure_round_end_to_end():
    led = Ledger()
    init(led)
    led.call(ids.admin(ORGS[0]), "create_job", job_spec())
    r, keys = open_and_register(led, "job1")
    led.call(ids.trainer(ORGS[1]), "close_registration", "job1", r)
    rng = np.random.default_rng(0)
    deltas = {m: rng.normal(0, 0.1, 8) for m in ORGS}
    samples = {"Org1MSP": 100, "Org2MSP": 300, "Org3MSP": 50}
    payloads = secure_payloads(keys, deltas, samples, "job1", r, ORGS)
    submit(led, "job1", r, payloads, samples)
    rec = led.call(ids.trainer(led.call(ids.trainer(ORGS[0]), "get_round", "job1", r)["leader"]), "aggregate", "job1", r)
    assert rec["state"] == "aggregated"
    got = led.call(ids.trainer(ORGS[2]), "get_aggregate", "job1", r)
    data = base64.b64decode(got["data_b64"])
    clear = codec.sum_mod([fixedpoint.encode_weighted(deltas[m], samples[m]) for m in ORGS])
    want = aggregation.fedavg_from_weighted_sum(clear, sum(samples.values()))
    assert np.array_equal(codec.to_signed(codec.unpack(data)), want)
    vote_all(led, "job1", r, h("v1"))
    v = led.call(ids.trainer(ORGS[0]), "finalize_round", "job1", r)
    assert v["version"] == 1 and v["model_hash"] == h("v1")
    lin = led.call(ids.auditor(ORGS[2]), "lineage", "job1", "latest")
    assert [x["version"] for x in lin] == [1, 0]
