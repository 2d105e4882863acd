"""Robust rules against a poisoned org: five (Krum, Multi-Krum) or seven (Bulyan) OrgNodes on the memory
ledger, one of them sending its honest update sign-flipped and scaled by 10. The rule leaves that update
out of every round (the chaincode recomputes it under endorsement), the ledger's model is the in-process
run's bit for bit, and the same attack under FedAvg costs accuracy the robust rules keep."""
from __future__ import annotations

import numpy as np
import pytest

from fedfabric.fl.recipe import LocalUpdate, Recipe
from fedfabric.fl.simulate import simulate
from fedfabric.fl.task import task_for
from fedfabric.node.bootstrap import create_job
from fedfabric.node.jobfile import parse_job
from fedfabric_protocol.spec import JobSpec

from tests.chaincode.harness import init

from .memledger import MemClient, drive, wall_clock_ledger

ATTACKER = "Org5MSP"


def poison(update: np.ndarray) -> np.ndarray:
    return -10.0 * update


class PoisonedRecipe(Recipe):
    """An org's real training, its update sign-flipped and scaled before it is encoded."""

    def train(self, base, r, rng=None) -> LocalUpdate:
        lu = super().train(base, r, rng)
        return LocalUpdate(lu.round, lu.new, poison(lu.update), lu.record, lu.dp_epsilon_milli)


def _recipe(spec: JobSpec, msp: str) -> Recipe:
    return (PoisonedRecipe if msp == ATTACKER else Recipe)(spec, task_for(spec, msp))


def _doc(job_id: str, n: int, rule: dict) -> dict:
    return {"job_id": job_id, "dataset": "breast_cancer", "model": {"arch": "logreg"}, "rounds": 3,
            "partition": {"kind": "iid"}, "training": {"epochs": 1, "lr": 0.05}, "privacy": "clear",
            "aggregation": rule, "quorum": "2/3", "min_participants": n,
            "participants": [f"org{i}" for i in range(1, n + 1)],
            "windows": {"registration_s": 30, "submission_s": 30, "approval_s": 30}}


@pytest.mark.parametrize("n, rule", [(5, {"rule": "krum", "krum_f": 1}),
                                     (5, {"rule": "multi_krum", "krum_f": 1}),
                                     (7, {"rule": "bulyan", "bulyan_f": 1})])
def test_a_poisoned_update_is_dropped_every_round(make_node, n, rule):
    orgs = [f"Org{i}MSP" for i in range(1, n + 1)]
    led = wall_clock_ledger()
    init(led, stakes=(100,) * n, balances=(0,) * n, orgs=orgs)
    admin = MemClient(led, orgs[0], "admin")
    doc = _doc(f"j-{rule['rule']}", n, rule)
    spec = JobSpec.from_dict(create_job(admin, parse_job(doc), {f"org{i}": m for i, m in enumerate(orgs, 1)})["spec"])
    nodes = [make_node(led, m, spec.job_id, recipe_for=_recipe) for m in orgs]
    drive(led, nodes, max_steps=6000)
    job = admin.get_job(spec.job_id)
    assert job["status"] == "completed" and job["rounds_finalized"] == 3
    for v in (1, 2, 3):
        ver = admin.get_version(spec.job_id, v)
        assert ATTACKER in ver["flagged"], ver["flagged"]
        assert len(ver["contributors"]) == n
    assert admin.get_org(ATTACKER)["stake"] < 100            # slashed as anomalous each round
    # the ledger's model is the in-process run's under the same attack, bit for bit
    attacked = simulate(spec, transform=lambda m, r, u: poison(u) if m == ATTACKER else u)
    assert attacked.rounds[-1].model_hash == admin.get_version(spec.job_id, 3)["model_hash"]
    assert all(ATTACKER in r.flagged for r in attacked.rounds)
    # the rule is what saves the model: FedAvg under the same attack does worse
    fedavg = JobSpec.from_dict({**spec.to_dict(), "aggregation": {"rule": "fedavg"}})
    naive = simulate(fedavg, transform=lambda m, r, u: poison(u) if m == ATTACKER else u)
    assert attacked.rounds[-1].accuracy > naive.rounds[-1].accuracy + 0.05, \
        (attacked.rounds[-1].accuracy, naive.rounds[-1].accuracy)
