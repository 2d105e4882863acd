"""Three OrgNodes whose trainers are the example Flower client (flwr's own NumPyClient, driven through
flwr's Client interface) run a secure job on the memory ledger: the ledger's models are the in-process
run's with the same clients bit for bit, the updates carry the clients' sample counts and data
fingerprints, and a client the node cannot use stops that node with a clear error."""
from __future__ import annotations

import hashlib

import pytest

pytest.importorskip("flwr", reason="flwr is not installed (pip install -e '.[flower]')")

import torch  # noqa: E402

from fedfabric.examples.flower_client import load_partition  # noqa: E402
from fedfabric.artifacts import model_hash  # noqa: E402
from fedfabric.fl.flower import recipe_factory  # noqa: E402
from fedfabric.node.bootstrap import create_job  # noqa: E402
from fedfabric.node.jobfile import parse_job  # noqa: E402
from fedfabric.node.runtime import NodeError  # noqa: E402
from fedfabric_protocol.spec import JobSpec  # noqa: E402

from tests.chaincode.harness import ORGS, init  # noqa: E402
from tests.fl.flower_clients import in_process  # noqa: E402

from .memledger import MemClient, drive, wall_clock_ledger  # noqa: E402
from .test_nodes_memledger import MSP_OF, _job  # noqa: E402

torch.set_num_threads(1)

EXAMPLE = "fedfabric.examples.flower_client:client_fn"


def flower_job(job_id: str, rounds: int = 2, **over) -> dict:
    """The memory-ledger job of the node tests, its model and data the example Flower client's."""
    return _job(job_id, rounds=rounds, dataset="digits", model={"parameters": "client", "client": EXAMPLE},
                partition={"kind": "iid"}, training={"epochs": 1, "lr": 0.1, "batch_size": 32}, **over)


def _world(doc):
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    spec = JobSpec.from_dict(create_job(admin, parse_job(doc), MSP_OF)["spec"])
    return led, admin, spec


def test_flower_clients_train_a_secure_job_on_the_ledger(make_node):
    led, admin, spec = _world(flower_job("j-flower", rounds=2))
    factory = recipe_factory(EXAMPLE)
    nodes = [make_node(led, m, "j-flower", recipe_for=factory) for m in ORGS]
    drive(led, nodes)
    job = admin.get_job("j-flower")
    assert job["status"] == "completed" and job["rounds_finalized"] == 2
    versions = [admin.get_version("j-flower", v) for v in (1, 2)]
    for v in versions:
        assert [c["msp_id"] for c in v["contributors"]] == ORGS
        assert all(a["approve"] and a["model_hash"] == v["model_hash"] for a in v["approvals"])
    assert [v["model_hash"] for v in versions] == [model_hash(vec) for vec in in_process(spec, EXAMPLE)[1]]
    # every update's record carries what its client reported: num_examples and its data fingerprint
    for i, m in enumerate(ORGS):
        (X, y), (_, y_val) = load_partition(i, 3, 0, 0.2)
        upd = admin.round_report("j-flower", 2)["participants"][m]["update"]
        assert upd["sample_count"] == len(y)
        assert upd["training"]["data_fingerprint"] == hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
        vote = admin.round_report("j-flower", 2)["participants"][m]["vote"]
        assert vote["metrics"]["val_samples"] == len(y_val) and vote["metrics"]["val_accuracy_milli"] > 0
    # the node's metrics counted the work
    reg = nodes[0].metrics.registry
    assert reg.get_sample_value("fedfabric_node_duty_seconds_count", {"duty": "train"}) == 2
    assert reg.get_sample_value("fedfabric_node_updates_submitted_total") == 2


def test_a_node_without_the_flower_client_says_how_to_start_it(make_node):
    led, _, _ = _world(flower_job("j-hint", rounds=1))
    node = make_node(led, ORGS[0], "j-hint", job_wait=0.0)
    with pytest.raises(NodeError, match="takes its model from Flower clients .* --flower-client"):
        node.sync()


def test_a_client_that_answers_nonsense_stops_its_node_with_the_reason(make_node):
    led, admin, _ = _world(flower_job("j-bad", rounds=1, min_participants=2))
    nodes = [make_node(led, m, "j-bad", recipe_for=recipe_factory(EXAMPLE)) for m in ORGS[:2]]
    nodes.append(make_node(led, ORGS[2], "j-bad", recipe_for=recipe_factory("tests.fl.flower_clients:short_fit_fn")))
    with pytest.raises(NodeError, match="Org3MSP: the trainer failed: the client's fit result: 5 arrays where the job's "
                                        "model has 6"):
        drive(led, nodes)
    assert admin.round_report("j-bad", 1)["participants"]["Org3MSP"]["update"] is None
