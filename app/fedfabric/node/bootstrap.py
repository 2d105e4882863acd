"""Putting a consortium and a job on the ledger: the two writes that come before any round."""
from __future__ import annotations

from typing import Any

from fedfabric_protocol.errors import ProtocolError
from fedfabric_protocol.spec import Hyperparams

from ..client import FedFabricClient, Rejected
from ..fl.partition import PartitionError
from ..fl.task import check_shards, model_facts
from .jobfile import JobFile, JobFileError, file_message, validate


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


def _partition_name(hyper: Hyperparams) -> str:
    return f"dirichlet (alpha={hyper.alpha})" if hyper.partition == "dirichlet" else hyper.partition


def _check_shards(job: JobFile, hyper: Hyperparams) -> None:
    """Build every org's shard once; :class:`JobFileError` naming the partition and the org left without
    a usable one (so no job that some node cannot run reaches the ledger)."""
    try:
        check_shards(hyper)
    except PartitionError as exc:
        org = job.participants[exc.org] if 0 <= exc.org < len(job.participants) else f"org #{exc.org + 1}"
        msp = hyper.shards[exc.org] if 0 <= exc.org < len(hyper.shards) else "?"
        where = f"{org} ({msp})" if msp != org else org
        raise JobFileError(f"partition {_partition_name(hyper)} of {hyper.dataset} over "
                           f"{len(job.participants)} orgs gives {where} no usable shard: {exc}") from None


def job_spec(job: JobFile, msp_of: dict[str, str]) -> dict:
    """The ledger spec of a job file: participants (org names) become MSP ids (``spec.participants``,
    sorted; ``hyperparams.shards`` keeps the file's order, which assigns the shards), every org's shard
    is built and checked, the model is built and hashed (for ``model.parameters: client``, the Flower
    client the file names is built and its parameters hashed), and the whole spec is validated by the
    protocol. Raises :class:`JobFileError`; writes nothing."""
    unknown = [p for p in job.participants if p not in msp_of and p not in msp_of.values()]
    if unknown:
        raise JobFileError(f"participants not in the consortium: {', '.join(unknown)} "
                           f"(members: {', '.join(sorted(msp_of))})")
    shards = [msp_of.get(p, p) for p in job.participants]
    draft = {**job.draft, "participants": sorted(shards), "hyperparams": {**job.draft["hyperparams"], "shards": shards}}
    try:
        hyper = Hyperparams.from_dict(draft["hyperparams"])
    except ProtocolError as exc:
        raise JobFileError(file_message(exc)) from None
    if job.flower_client is None:
        _check_shards(job, hyper)
        facts, _ = model_facts(hyper)
    else:   # the model is the Flower client's, and so is the data: version 0 from the client's get_parameters
        facts = _client_model_facts(job, draft, hyper)
    return validate({**draft, "model": facts}).to_dict()


def _client_model_facts(job: JobFile, draft: dict, hyper: Hyperparams) -> dict:
    """The model section of a job whose parameters come from the Flower client the file names
    (:class:`JobFileError` naming it if it cannot be built or answers nonsense)."""
    from ..fl.flower import job_model_facts
    from ..fl.task import TaskError

    try:
        return job_model_facts(job.flower_client, draft["job_id"], draft["rounds"], hyper)
    except TaskError as exc:
        raise JobFileError(f"model.client {job.flower_client}: {exc}") from None


def create_job(client: FedFabricClient, job: JobFile, msp_of: dict[str, str]) -> dict:
    """Check the job file in full (:class:`JobFileError`, nothing written), then create the job."""
    return client.create_job(job_spec(job, msp_of)).value
