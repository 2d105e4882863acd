"""``fedfabric demo``: the whole product, end to end, on this machine."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import EXIT_FAILED, Config, RunDir, fail, manual


@manual
def demo(keep_network: Annotated[bool, typer.Option("--keep-network/--no-keep-network",
                                                    help="Leave the network running afterwards.")] = False,
         job_file: Annotated[Optional[Path], typer.Option(
             "--job-file", help="Job file (default: 3 orgs, breast cancer, 10 secure rounds).")] = None,
         out: Annotated[Optional[Path], typer.Option("--out", help="Report directory (default: reports/<job-id>).")]
         = None,
         config: Config = None, run_dir: RunDir = None) -> None:
    """The whole thing, end to end, on this machine.

    Brings up the Fabric network (3 Raft orderers, one peer and one CA per org, the fedfabric chaincode),
    records the consortium, creates a job (by default 3 orgs, breast-cancer data split non-IID, secure
    aggregation, 10 rounds), starts one training node per participating org, follows the rounds, writes
    the audit report and compares the final model with a centrally trained one, then takes the network
    down (unless --keep-network). The job file is checked in full before the network comes up; if any step
    fails, the error is printed and the network is still taken down.

    \b
    [bold]Examples[/]
      fedfabric demo
      fedfabric demo --keep-network
      fedfabric demo --job-file app/fedfabric/node/jobs/breast_cancer_dp.yaml

    [bold]Exit status.[/] 0 the job ran and the report was written · 1 a step failed (network, chaincode,
    a node, the job; the message names it) · 2 bad input (job file, consortium config).
    """
    from ..network import paths
    from ..network.config import ConfigError
    from ..node.demo import DEFAULT_JOB, DemoError, run_demo
    from ..node.jobfile import JobFileError

    try:
        run_demo(config_path=config or paths.DEFAULT_CONFIG, run_root=run_dir, job_file=job_file or DEFAULT_JOB,
                 out_dir=out, keep_network=keep_network)
    except (JobFileError, ConfigError) as exc:
        fail(str(exc))
    except DemoError as exc:
        fail(str(exc), EXIT_FAILED)
