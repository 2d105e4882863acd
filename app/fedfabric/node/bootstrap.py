"""Putting a consortium and a job on the ledger: the two writes that come before any round."""
from __future__ import annotations

from typing import Any

from ..client import FedFabricClient, Rejected
from .jobfile import JobFile, ledger_spec
from .task import model_facts


def init_consortium(client: FedFabricClient, config: Any) -> bool:
    """Record the orgs and stakes of ``consortium.yaml``; False if the ledger already has them."""
    orgs = [{"msp_id": o.msp_id, "name": o.name, "stake": int(o.stake)} for o in config.orgs]
    q = config.chaincode.endorsement_quorum
    try:
        client.init_consortium(orgs, f"{q.numerator}/{q.denominator}")
    except Rejected as exc:
        if exc.status == 409 and "already initialized" in exc.message:
            return False
        raise
    return True


def job_spec(job: JobFile, msp_of: dict[str, str]) -> dict:
    """The ledger spec of a job file; participants (org names) become MSP ids, the model is built and hashed."""
    unknown = [p for p in job.participants if p not in msp_of and p not in msp_of.values()]
    if unknown:
        raise ValueError(f"participants not in the consortium: {', '.join(unknown)} "
                         f"(members: {', '.join(sorted(msp_of))})")
    hyper = dict(job.hyperparams)
    hyper["shards"] = [msp_of.get(p, p) for p in job.participants]
    facts, _ = model_facts(hyper)
    job.hyperparams = hyper
    return ledger_spec(job, facts)


def create_job(client: FedFabricClient, job: JobFile, msp_of: dict[str, str]) -> dict:
    """Create the job; returns the ledger's job record."""
    return client.create_job(job_spec(job, msp_of)).value
