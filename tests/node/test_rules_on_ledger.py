"""Every registered rule (clear mode) and every server optimizer (secure mode): three OrgNodes on the
memory ledger finalize exactly the model of the in-process run -- the chaincode's recomputation, the
nodes' and the simulation's are one code path, bit for bit."""
from __future__ import annotations

import pytest

from fedfabric.fl.simulate import simulate
from fedfabric.node.bootstrap import create_job
from fedfabric.node.jobfile import parse_job
from fedfabric_protocol.optimizers import optimizer_names
from fedfabric_protocol.rules import rule_names
from fedfabric_protocol.spec import JobSpec

from tests.chaincode.harness import ORGS, init

from .memledger import MemClient, drive, wall_clock_ledger

# parameters that make each rule feasible with 3 orgs (no Byzantine tolerance: f = 0)
THREE_ORGS = {"fedavg": {}, "median": {}, "trimmed_mean": {"trim": 1}, "multi_krum": {"krum_f": 0},
              "krum": {"krum_f": 0}, "bulyan": {"bulyan_f": 0}}


def _run(make_node, job_id: str, **over) -> tuple[MemClient, JobSpec]:
    doc = {"job_id": job_id, "dataset": "breast_cancer", "model": {"arch": "logreg"}, "rounds": 2,
           "partition": {"kind": "dirichlet", "alpha": 0.5}, "training": {"epochs": 1, "lr": 0.05},
           "participants": ["org1", "org2", "org3"],
           "windows": {"registration_s": 30, "submission_s": 30, "approval_s": 30}, **over}
    led = wall_clock_ledger()
    init(led)
    admin = MemClient(led, ORGS[0], "admin")
    spec = JobSpec.from_dict(create_job(admin, parse_job(doc), {f"org{i}": m for i, m in enumerate(ORGS, 1)})["spec"])
    drive(led, [make_node(led, m, job_id) for m in ORGS])
    assert admin.get_job(job_id)["rounds_finalized"] == 2
    return admin, spec


def test_every_rule_has_three_org_parameters_here():
    assert sorted(THREE_ORGS) == rule_names()


@pytest.mark.parametrize("rule", rule_names())
def test_the_ledger_model_is_the_simulation_for_every_rule(make_node, rule):
    admin, spec = _run(make_node, f"j-{rule}", privacy="clear", min_participants=3,
                       aggregation={"rule": rule, **THREE_ORGS[rule]})
    sim = simulate(spec)
    vers = [admin.get_version(spec.job_id, v) for v in (1, 2)]
    assert [(r.aggregate_hash, r.model_hash, list(r.flagged)) for r in sim.rounds] == \
           [(v["aggregate_hash"], v["model_hash"], v["flagged"]) for v in vers]
    assert all(v["rule"] == spec.aggregation.to_dict() for v in vers)


@pytest.mark.parametrize("kind", optimizer_names())
def test_the_ledger_model_is_the_simulation_for_every_server_optimizer(make_node, kind):
    admin, spec = _run(make_node, f"j-{kind}", privacy="secure", server_optimizer={"kind": kind})
    sim = simulate(spec)
    vers = [admin.get_version(spec.job_id, v) for v in (1, 2)]
    assert [(r.model_hash, r.step_hash, r.state_hash) for r in sim.rounds] == \
           [(v["model_hash"], v["optimizer"]["step_hash"], v["optimizer"]["state_hash"]) for v in vers]
