"""``fedfabric``: the command line of the consortium's federated learning.

Every command explains itself with ``--help``. ``fedfabric network …`` is what ``network/network.sh``
runs; the others talk to the ledger through the Fabric Gateway (:func:`fedfabric.cli.common.ledger`).
One module per command group.
"""

from __future__ import annotations

import typer

from .. import __version__
from . import audit, consortium, demo, job, model, network, node, org

app = typer.Typer(
    name="fedfabric",
    help="Federated learning for a consortium, coordinated and audited by Hyperledger Fabric.\n\n"
         "Start with `fedfabric demo` (a real network on this machine, end to end), or "
         "`fedfabric network up` to bring the consortium network up yourself.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


app.add_typer(network.app, name="network")


@app.command()
def version() -> None:
    """Print the fedfabric version and the pinned Fabric release."""
    from ..network.fabricbin import read_pin

    pin = read_pin()
    typer.echo(f"fedfabric {__version__} (Hyperledger Fabric {pin['FABRIC_RELEASE']}, "
               f"{pin['FABRIC_MODULE']}@{pin['FABRIC_MODULE_VERSION']})")


app.add_typer(consortium.app, name="consortium")
app.add_typer(job.app, name="job")
app.command("node")(node.node)
app.add_typer(audit.app, name="audit")
app.add_typer(model.app, name="model")
app.add_typer(org.app, name="org")
app.command("demo")(demo.demo)


def main() -> None:
    app(prog_name="fedfabric")   # also under `python -m fedfabric` (network/network.sh)
