"""``fedfabric job …``: create a training job from a YAML job file, inspect one."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import Config, Org, RunDir, User, fail, ledger, manual, where

app = typer.Typer(help="Training jobs: create one from a YAML job file, inspect them.", no_args_is_help=True,
                  rich_markup_mode="rich")


@app.command("create")
@manual
def job_create(file: Annotated[Path, typer.Argument(help="The YAML job file (see app/fedfabric/node/jobs/).")],
               org: Org = "org1", config: Config = None, run_dir: RunDir = None,
               job_id: Annotated[Optional[str], typer.Option("--job-id", help="Override the file's job_id.")] = None,
               ) -> None:
    """Create a training job from a YAML job file, as the org's admin.

    The job file names the dataset, the model, how the data is partitioned among the participants, the
    number of rounds, local training (epochs, learning rate, batch size, optimizer, FedProx mu), the
    privacy mode (secure or clear), the aggregation rule, optional differential privacy, the approval
    quorum, the minimum number of participants, the round windows and the participants. See the bundled
    examples in app/fedfabric/node/jobs/.

    Everything is checked before anything is written: every field, the participants against
    consortium.yaml, and every participant's data shard, built once exactly as its node will build it (a
    partition that leaves an org empty or with too few samples is refused, naming the partition and the
    org). The initial model is built from the file; its hash becomes version 0 of the job's lineage. The
    job's participants (their MSP ids) are recorded with the job; only their nodes take part.

    \b
    [bold]Examples[/]
      fedfabric job create app/fedfabric/node/jobs/breast_cancer_secure.yaml
      fedfabric job create my-job.yaml --job-id bc-2 --org org2

    [bold]Exit status.[/] 0 job created · 1 the ledger could not be reached or the transaction failed · 2
    bad input (invalid job file, a partition some org cannot train on, unknown org, no admin identity, or
    the contract refused the job, e.g. its id exists), with a one-line message; nothing is written on
    failure.
    """
    from fedfabric_protocol.errors import show
    from fedfabric_protocol.fields import ID_RE

    from ..node.bootstrap import job_spec
    from ..node.jobfile import JobFileError, load_job_file

    here = where(org, config, run_dir)
    try:
        job = load_job_file(file, [o.name for o in here.config.orgs])
        if job_id:
            if not ID_RE.match(job_id):
                raise JobFileError(f"--job-id must match {ID_RE.pattern}, got {show(job_id, 80)}")
            job = job.renamed(job_id)
        spec = job_spec(job, {o.name: o.msp_id for o in here.config.orgs})
    except JobFileError as exc:
        fail(str(exc))
    with ledger(here, "Admin") as s:
        rec = s.client.create_job(spec).value
    typer.echo(f"job {rec['job_id']} created: {rec['spec']['rounds']} rounds, {rec['spec']['privacy']} mode, "
               f"participants {', '.join(rec['spec']['participants'])}, "
               f"initial model {rec['spec']['model']['initial_hash'][:16]}…")


@app.command("show")
def job_show(job: Annotated[str, typer.Argument(help="Job id.")], org: Org = "org1", user: User = "User1",
             config: Config = None, run_dir: RunDir = None) -> None:
    """A job's spec, status and its rounds so far."""
    with ledger(where(org, config, run_dir), user) as s:
        rec, rounds = s.client.get_job(job), s.client.list_rounds(job)
    typer.echo(json.dumps({"job": rec, "rounds": rounds}, indent=2, sort_keys=True))
