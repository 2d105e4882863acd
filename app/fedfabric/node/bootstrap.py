"""Putting a consortium and a job on the ledger: the two writes that come before any round."""
from __future__ import annotations

import logging
from typing import Any

from ..client import FedFabricClient, Rejected
from ..fl.partition import PartitionError
from .jobfile import JobFile, JobFileError, ledger_spec
from .task import check_shards, model_facts

log = logging.getLogger("fedfabric.node")


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


def _partition_name(hyper: dict) -> str:
    return f"dirichlet (alpha={hyper['alpha']})" if hyper["partition"] == "dirichlet" else hyper["partition"]


def _check_shards(job: JobFile, hyper: dict) -> None:
    """Build every org's shard once; :class:`JobFileError` naming the partition and the org left without
    a usable one (so no job that some node cannot run reaches the ledger)."""
    try:
        check_shards(hyper)
    except PartitionError as exc:
        org = job.participants[exc.org] if 0 <= exc.org < len(job.participants) else f"org #{exc.org + 1}"
        msp = hyper["shards"][exc.org] if 0 <= exc.org < len(hyper["shards"]) else "?"
        where = f"{org} ({msp})" if msp != org else org
        raise JobFileError(f"partition {_partition_name(hyper)} of {hyper['dataset']} over "
                           f"{len(job.participants)} orgs gives {where} no usable shard: {exc}") from None


def job_spec(job: JobFile, msp_of: dict[str, str]) -> dict:
    """The ledger spec of a job file: participants (org names) become MSP ids (``spec.participants``,
    sorted; ``hyperparams.shards`` keeps the file's order, which assigns the shards), every org's shard
    is built and checked, the model is built and hashed. Raises :class:`JobFileError`; writes nothing."""
    unknown = [p for p in job.participants if p not in msp_of and p not in msp_of.values()]
    if unknown:
        raise JobFileError(f"participants not in the consortium: {', '.join(unknown)} "
                           f"(members: {', '.join(sorted(msp_of))})")
    hyper = dict(job.hyperparams)
    hyper["shards"] = [msp_of.get(p, p) for p in job.participants]
    _check_shards(job, hyper)
    facts, _ = model_facts(hyper)
    job.hyperparams = hyper
    spec = ledger_spec(job, facts)
    spec["participants"] = sorted(hyper["shards"])
    return spec


def _active_members(client: FedFabricClient) -> list[str]:
    return sorted(o["msp_id"] for o in client.list_orgs() if o.get("status") == "active" and o.get("stake", 0) > 0)


def submit_spec(client: FedFabricClient, spec: dict) -> dict:
    """``create_job`` with a checked spec; returns the ledger's job record.

    A contract that predates ``spec.participants`` refuses the field; when the participants are all
    active staked members (that contract's only behaviour) the job is created without it, otherwise
    the refusal stands with a message saying why.
    """
    try:
        return client.create_job(spec).value
    except Rejected as exc:
        if "participants" not in spec or not ("unknown field" in exc.message and "participants" in exc.message):
            raise
        members = _active_members(client)
        if spec["participants"] != members:
            raise JobFileError(f"the deployed chaincode does not support a subset of participants "
                               f"({', '.join(spec['participants'])} of {', '.join(members)}); upgrade it or "
                               "list every member") from None
        log.info("the deployed chaincode predates spec.participants; every member takes part, as listed")
        return client.create_job({k: v for k, v in spec.items() if k != "participants"}).value


def create_job(client: FedFabricClient, job: JobFile, msp_of: dict[str, str]) -> dict:
    """Check the job file in full (:class:`JobFileError`, nothing written), then create the job."""
    return submit_spec(client, job_spec(job, msp_of))
