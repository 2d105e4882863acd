"""The training recipe and the in-process federation built on it."""
import numpy as np
import pytest

from fedfabric.fl import fixedpoint, secagg
from fedfabric.fl.recipe import Recipe
from fedfabric.fl.simulate import centralized, simulate
from fedfabric.fl.task import task_for
from fedfabric_protocol import codec
from fedfabric_protocol.records import UpdateMeta
from fedfabric_protocol.spec import JobSpec

from tests.protocol.test_spec import spec as spec_doc


def _spec(**over) -> JobSpec:
    from fedfabric.fl.task import model_facts
    from fedfabric_protocol.spec import Hyperparams

    d = spec_doc(**over)
    d["model"], _ = model_facts(Hyperparams.from_dict(d["hyperparams"]))
    return JobSpec.from_dict(d)


def test_training_is_seeded_by_job_and_round_and_dp_noise_is_fresh():
    spec = _spec()
    r = Recipe(spec, task_for(spec, "Org1MSP"))
    base = r.task.initial
    a, b = r.train(base, 1), r.train(base, 1)
    assert np.array_equal(a.update, b.update) and a.dp_epsilon_milli is None
    assert not np.array_equal(a.update, r.train(base, 2).update)
    dp = _spec(dp={"enabled": True, "clip_norm_milli": 100, "noise_multiplier_milli": 800, "epsilon_budget_milli": 9000})
    rd = Recipe(dp, task_for(dp, "Org1MSP"))
    x, y = rd.train(base, 1), rd.train(base, 1)
    assert not np.array_equal(x.update, y.update) and x.dp_epsilon_milli > 0
    assert rd.train(base, 1, np.random.default_rng(5)).update.tolist() == rd.train(base, 1, np.random.default_rng(5)).update.tolist()


def test_encoding_masks_and_meta_are_what_the_contract_accepts():
    spec = _spec()
    r = Recipe(spec, task_for(spec, "Org1MSP"))
    lu = r.train(r.task.initial, 1)
    plain = r.encode(lu, 3)
    assert np.array_equal(plain, fixedpoint.encode_weighted(lu.update, r.samples, headroom=3))
    seeds = {"Org2MSP": bytes(32), "Org3MSP": bytes(range(32))}
    masked = r.encode(lu, 3, seeds)
    assert np.array_equal(masked, secagg.mask_update(plain, "Org1MSP", seeds))
    payload = codec.pack(masked)
    meta = r.meta(lu, payload, endpoint="127.0.0.1:9961")
    assert UpdateMeta.from_dict(meta).sha256 == codec.sha256_hex(payload) and meta["size"] == len(payload)
    assert meta["sample_count"] == r.samples and meta["endpoint"] == "127.0.0.1:9961"
    huge = type(lu)(1, lu.new, lu.update * 1e9, lu.record, None)
    with pytest.raises(fixedpoint.FixedPointError):
        r.encode(huge, 3)


def test_judging_a_candidate():
    spec = _spec()
    r = Recipe(spec, task_for(spec, "Org2MSP"))
    base = r.task.initial
    good = r.judge(r.train(base, 1).new, base)
    assert good.approve and 0 <= good.metrics["val_accuracy_milli"] <= 1000
    bad = r.judge(np.full_like(base, np.nan), base)
    assert not bad.approve and bad.metrics["val_loss_micro"] == -1


def test_in_process_federation_is_reproducible_and_learns():
    spec = _spec(rounds=3)
    a, b = simulate(spec), simulate(spec)
    assert [x.model_hash for x in a.rounds] == [x.model_hash for x in b.rounds]
    assert a.rounds[-1].accuracy > 0.9
    clear = simulate(_spec(rounds=3, privacy="clear", aggregation={"rule": "median"}))
    assert clear.rounds[-1].accuracy > 0.85
    assert centralized(spec)["accuracy"] > 0.9
