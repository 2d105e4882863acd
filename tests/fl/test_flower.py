"""A Flower client as an org's trainer (fl.flower): the job file's `parameters: client`, version 0 from the
client, flwr's own Client interface driven with the job's config, the flat vector both ways, the node's DP,
encoding and record on top, and clear errors for clients the node cannot use."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flwr", reason="flwr is not installed (pip install -e '.[flower]')")

import torch  # noqa: E402

from fedfabric.artifacts import model_hash  # noqa: E402
from fedfabric.examples import flower_client as example  # noqa: E402
from fedfabric.fl import fixedpoint  # noqa: E402
from fedfabric.fl.flower import (FLOWER_ARCH, ArrayLayout, FlowerClientError, FlowerRecipe,  # noqa: E402
                                 load_factory, recipe_factory)
from fedfabric.fl.task import TaskError, task_for  # noqa: E402
from fedfabric.node.bootstrap import job_spec  # noqa: E402
from fedfabric.node.jobfile import JobFileError, load_job_file, parse_job  # noqa: E402
from fedfabric_protocol import codec  # noqa: E402
from fedfabric_protocol.records import Ballot, UpdateMeta  # noqa: E402
from fedfabric_protocol.spec import JobSpec  # noqa: E402

from . import flower_clients  # noqa: E402

torch.set_num_threads(1)

MSP_OF = {f"org{i}": f"Org{i}MSP" for i in (1, 2, 3)}
TINY = "tests.fl.flower_clients:tiny_fn"
EXAMPLE = "fedfabric.examples.flower_client:client_fn"


def _doc(ref: str = TINY, **over) -> dict:
    doc = {"job_id": "fl-1", "dataset": "digits", "model": {"parameters": "client", "client": ref}, "rounds": 3,
           "partition": {"kind": "iid"}, "training": {"epochs": 2, "lr": 0.125, "batch_size": 16},
           "privacy": "secure", "min_participants": 2, "participants": ["org1", "org2", "org3"]}
    doc.update(over)
    return doc


def _spec(ref: str = TINY, **over) -> JobSpec:
    return JobSpec.from_dict(job_spec(parse_job(_doc(ref, **over)), MSP_OF))


def test_the_job_records_the_clients_parameters_as_version_0():
    spec = _spec()
    arrays = flower_clients._arrays()
    flat = np.concatenate([a.astype(np.float32).ravel() for a in arrays])
    assert spec.model.arch_id == FLOWER_ARCH and spec.model.num_params == 3 * 2 + 2 + 1
    assert spec.model.initial_hash == model_hash(flat)
    assert spec.model.shape_digest == ArrayLayout.of(arrays).digest
    # the factory got a real flwr Context: the first participant's partition, the job's facts
    ctx = flower_clients.SEEN["context"]
    from flwr.app import Context
    assert isinstance(ctx, Context)
    assert ctx.node_config == {"partition-id": 0, "num-partitions": 3}
    assert ctx.run_config["lr"] == 0.125 and ctx.run_config["local-epochs"] == 2 and ctx.run_config["job-id"] == "fl-1"


def test_the_example_job_file_builds_the_example_client():
    job = load_job_file("app/fedfabric/node/jobs/digits_flower.yaml")
    assert job.flower_client == EXAMPLE
    spec = JobSpec.from_dict(job_spec(job, MSP_OF))
    assert spec.model.arch_id == FLOWER_ARCH
    assert spec.model.num_params == sum(p.numel() for p in example.Net().parameters())


def test_array_layout_flattens_and_restores_shapes_and_dtypes():
    arrays = flower_clients._arrays()
    layout = ArrayLayout.of(arrays)
    vec = layout.flatten(arrays)
    assert vec.dtype == np.float32 and vec.size == layout.size == 9
    back = layout.unflatten(vec + 0.6)
    assert [a.shape for a in back] == [(3, 2), (2,), ()]
    assert [a.dtype for a in back] == [np.float32, np.float64, np.int64]
    assert int(back[2]) == 6   # integer arrays are rounded, not truncated
    np.testing.assert_allclose(back[0], arrays[0] + 0.6, rtol=1e-6)
    with pytest.raises(FlowerClientError, match="array 0 has shape"):
        layout.flatten([np.zeros((2, 3), np.float32), arrays[1], arrays[2]])
    with pytest.raises(FlowerClientError, match="parameters: 2 arrays where the job's model has 3"):
        layout.flatten(arrays[:2])
    with pytest.raises(FlowerClientError, match="not a numeric NumPy array"):
        ArrayLayout.of([np.array(["a"])])


def test_fit_is_driven_with_the_jobs_config_and_the_node_does_the_rest():
    spec = _spec()
    rec = FlowerRecipe.from_ref(spec, "Org2MSP", TINY)
    assert flower_clients.SEEN["context"].node_config == {"partition-id": 1, "num-partitions": 3}
    base = rec.initial
    assert rec.samples is None   # known once the client has trained
    lu = rec.train(base, 2)
    assert flower_clients.SEEN["client"].fits == [{"server_round": 2, "local_epochs": 2, "lr": 0.125, "batch_size": 16,
                                                  "optimizer": "sgd", "proximal_mu": 0.0, "seed": 2}]
    # update = new - base on the flat vector; the int64 scalar moved by 1, the floats by lr
    np.testing.assert_allclose(lu.update[:8], 0.125, rtol=1e-6)
    assert lu.update[8] == 1.0
    assert rec.samples == 7 and rec.sample_count(lu) == 7
    # secure mode: weighted by the client's num_examples
    assert np.array_equal(rec.encode(lu, 3), fixedpoint.encode_weighted(lu.update, 7, headroom=3))
    payload = codec.pack(rec.encode(lu, 3))
    meta = rec.meta(lu, payload)
    m = UpdateMeta.from_dict(meta)
    assert m.sample_count == 7 and m.shape_digest == spec.model.shape_digest
    assert m.training.epochs == 2 and m.training.iterations == 3
    assert m.training.loss_per_epoch == (-1, 250000)   # one loss for the whole fit; the earlier epoch not reported
    assert meta["metrics"]["train_loss_micro"] == 250000 and "local_val_loss_micro" in meta["metrics"]


def test_dp_is_the_nodes_not_the_clients():
    dp = {"enabled": True, "clip_norm": 0.1, "noise_multiplier": 0.5, "epsilon_budget": 50}
    rec = FlowerRecipe.from_ref(_spec(dp=dp), "Org1MSP", TINY)
    lu = rec.train(rec.initial, 1, np.random.default_rng(3))
    assert lu.dp_epsilon_milli and lu.dp_epsilon_milli > 0
    # the client moved the values by 0.125 and 1 (norm 1.06); the node clipped that to norm 0.1, then added
    # noise of sd 0.05 per value (norm about 0.15 over 9 values)
    raw = np.r_[np.full(8, 0.125), 1.0]
    clipped = raw * (0.1 / np.linalg.norm(raw))
    assert np.linalg.norm(lu.update - raw) > 0.8
    assert 0.02 < np.linalg.norm(lu.update - clipped) < 0.4


def test_judging_with_the_clients_evaluate():
    rec = FlowerRecipe.from_ref(_spec(), "Org3MSP", TINY)
    base = rec.initial
    ok = rec.judge(base, base)
    assert ok.approve and ok.metrics["val_samples"] == 4 and "val_accuracy_milli" in ok.metrics
    assert Ballot(True, None, ok.metrics, None).metrics == ok.metrics   # the ballot takes them as they are
    worse = base.copy()
    worse[:6] += 5.0   # the client's accuracy drops to 0
    assert not rec.judge(worse, base).approve
    nan = base.copy()
    nan[0] = np.nan
    j = rec.judge(nan, base)
    assert not j.approve and j.metrics["val_loss_micro"] == -1


def test_a_factory_without_arguments_returning_the_numpy_client_itself():
    spec = _spec("tests.fl.flower_clients:tiny_numpy")
    rec = FlowerRecipe.from_ref(spec, "Org1MSP", "tests.fl.flower_clients:tiny_numpy")
    assert model_hash(rec.initial) == spec.model.initial_hash


@pytest.mark.parametrize("ref, message", [
    ("no_colon", "must be package.module:factory"),
    ("tests.fl.nope_module:fn", "cannot import 'tests.fl.nope_module'"),
    ("tests.fl.flower_clients:missing", "has no 'missing'"),
    ("tests.fl.flower_clients:NOT_CALLABLE", "not a callable"),
])
def test_bad_references_are_named(ref, message):
    with pytest.raises(FlowerClientError, match=message):
        load_factory(ref)
    with pytest.raises(FlowerClientError, match=message):
        recipe_factory(ref)


def test_clients_the_node_cannot_use_are_refused_clearly():
    spec = _spec()
    with pytest.raises(FlowerClientError, match="returned a dict, not a flwr NumPyClient or Client"):
        FlowerRecipe.from_ref(spec, "Org1MSP", "tests.fl.flower_clients:not_a_client_fn")
    # every org's client must start from version 0
    with pytest.raises(FlowerClientError, match="must start from the same parameters"):
        FlowerRecipe.from_ref(spec, "Org2MSP", "tests.fl.flower_clients:unseeded_fn")
    bad = FlowerRecipe.from_ref(spec, "Org1MSP", "tests.fl.flower_clients:wrong_shapes_fn")
    with pytest.raises(FlowerClientError, match="fit result: array 0 has shape"):
        bad.train(bad.initial, 1)
    nofit = FlowerRecipe.from_ref(spec, "Org1MSP", "tests.fl.flower_clients:no_fit_fn")
    with pytest.raises(FlowerClientError, match="fit answered FIT_NOT_IMPLEMENTED"):
        nofit.train(nofit.initial, 1)
    # a client whose arrays are not the job's model
    other = _spec(EXAMPLE)
    with pytest.raises(FlowerClientError, match="are not the job's model"):
        FlowerRecipe.from_ref(other, "Org1MSP", TINY)


def test_flower_jobs_and_fedfabric_jobs_do_not_mix():
    from tests.fl.test_recipe_simulate import _spec as own_spec

    with pytest.raises(FlowerClientError, match="start the node without --flower-client"):
        FlowerRecipe.from_ref(own_spec(), "Org1MSP", TINY)
    with pytest.raises(TaskError, match="start the node with --flower-client"):
        task_for(_spec(), "Org1MSP")


@pytest.mark.parametrize("model, message", [
    ({"parameters": "client"}, "needs model.client"),
    ({"parameters": "client", "client": "not a ref"}, "needs model.client"),
    ({"parameters": "client", "client": TINY, "arch": "cnn"}, "model.arch: the model of a parameters: client job"),
    ({"client": TINY}, "set model.parameters: client"),
    ({"parameters": "server"}, "model.parameters must be one of job, client"),
])
def test_job_file_model_section(model, message):
    with pytest.raises(JobFileError, match=message):
        parse_job(_doc(model=model))


def test_job_create_names_a_client_that_cannot_be_built():
    with pytest.raises(JobFileError, match="model.client tests.fl.flower_clients:not_a_client_fn: .* returned a dict"):
        job_spec(parse_job(_doc("tests.fl.flower_clients:not_a_client_fn")), MSP_OF)


def test_the_example_client_learns_under_the_nodes_recipe():
    """Three orgs' example clients, FedAvg of their fixed-point updates as the ledger computes it: the
    federated model gets better on every org's validation data."""
    spec = _spec(EXAMPLE, training={"epochs": 2, "lr": 0.1, "batch_size": 32})
    recs, models = flower_clients.in_process(spec, EXAMPLE)
    first = {m: r.evaluate(recs[m].initial).accuracy for m, r in recs.items()}
    last = {m: r.evaluate(models[-1]).accuracy for m, r in recs.items()}
    assert all(last[m] > first[m] + 0.3 for m in recs), (first, last)
    assert min(last.values()) > 0.75, last
    # the example reports a fingerprint of its training data, and the record carries it
    import hashlib

    (X, y), _ = example.load_partition(0, 3, 0, 0.2)
    lu = recs["Org1MSP"].train(models[-1], 4)
    assert lu.record["data_fingerprint"] == hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    assert lu.record["samples"] == len(y)
