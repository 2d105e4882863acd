"""What every ``fedfabric`` command shares: its options, help that reads like a manual, one way to talk
to the ledger, one way to end badly, and its output (tables on a console, or JSON).

Every command that talks to the ledger opens it with :func:`ledger` (or :func:`peers`, every org's peer
at once), which connects through :func:`fedfabric.client.open_client` and nothing else.
"""
from __future__ import annotations

import datetime as _dt
import inspect
import json
import os
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, NoReturn, Optional

import typer

if TYPE_CHECKING:
    from ..network.config import ConsortiumConfig, PeerOrg
    from ..network.layout import Layout

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

# ---- the options the commands share
Org = Annotated[str, typer.Option("--org", help="The org you act as, through its own peer: its name in "
                                                "consortium.yaml (org1) or its MSP id (Org1MSP).")]
User = Annotated[str, typer.Option("--user", help="The identity to act as: User1 (trainer), Admin, Auditor "
                                                  "(the read-only auditor role), or one enrolled with "
                                                  "network.sh enroll.")]
RunDir = Annotated[Optional[Path], typer.Option(
    "--run-dir", show_default=False, file_okay=False,
    help="The network's run directory, with the identities. [dim]Default: $FEDFABRIC_RUN_DIR, else run/ in the "
         "repository.[/]")]
Config = Annotated[Optional[Path], typer.Option(
    "--config", show_default=False, dir_okay=False,
    help="The consortium definition. [dim]Default: network/consortium.yaml.[/]")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables (errors too, as "
                                                   "{\"ok\": false, \"error\": …}).")]
Store = Annotated[Optional[Path], typer.Option(
    "--store", show_default=False, file_okay=False,
    help="Artifact store holding model parameters by hash. [dim]Default: the org node's store, "
         "<run-dir>/fl/<org>/artifacts.[/]")]


QUERY_HELP = ("[bold]Connecting.[/] Queries go to the peer of [cyan]--org[/] as [cyan]--user[/], using the "
              "network's own crypto material under [cyan]--run-dir[/] and the consortium definition in "
              "[cyan]--config[/] (the same files [cyan]network/network.sh up[/] created).\n\n"
              "[bold]Exit status.[/] 0 success · 1 a check failed · 2 bad input (unknown job, version, org or "
              "file; no identity; ledger unreachable), always with a one-line message.")


def manual(fn: Any) -> Any:
    """Help that reads like a manual: each docstring paragraph becomes one line, so it wraps to the
    terminal rather than to the source; a paragraph starting with ``\\b`` keeps its lines (examples)."""
    doc = inspect.cleandoc(fn.__doc__ or "")
    paras = []
    for para in doc.split("\n\n"):
        if para.startswith("\b"):
            paras.append(para[1:].strip("\n"))
        else:
            paras.append(" ".join(line.strip() for line in para.splitlines()))
    fn.__doc__ = "\n\n".join(paras)
    return fn


# ---- ending badly: one line (or a JSON error) and an exit status, never a traceback
def fail(message: str, code: int = EXIT_BAD_INPUT, *, as_json: bool = False, prefix: str = "error") -> NoReturn:
    """End the command with exit status ``code``: ``error: message`` on stderr, or with ``--json``
    ``{"ok": false, "exit_code": code, "error": message}`` on stdout."""
    if as_json:
        emit_json({"ok": False, "exit_code": code, "error": message})
    else:
        typer.secho(f"{prefix}: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _explain(exc: Exception, unreachable: int) -> tuple[int, str, str] | None:
    """(exit status, prefix, message) of a failure a command expects; None for a bug."""
    import grpc

    from ..artifacts import ArtifactError
    from ..audit import AuditError, BadInput
    from ..client import Rejected
    from ..ledger import GatewayError
    from ..network.config import ConfigError
    from ..network.definition import DefinitionError
    from ..network.fabricbin import FabricBinaryError
    from ..network.lifecycle import LifecycleError
    from ..network.orgchange import OrgChangeError

    if isinstance(exc, AuditError):
        return EXIT_FAILED, "FAILED", str(exc)
    if isinstance(exc, Rejected):
        return EXIT_BAD_INPUT, "error", f"the ledger refused {exc.function}: {exc.message}"
    if isinstance(exc, GatewayError):
        down = exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        return unreachable, "error", f"{exc}" + (" (is the network up? network/network.sh status)" if down else "")
    if isinstance(exc, (FabricBinaryError, LifecycleError)):
        return EXIT_FAILED, "error", str(exc)
    if isinstance(exc, (BadInput, ArtifactError, ConfigError, DefinitionError, OrgChangeError, FileNotFoundError)):
        return EXIT_BAD_INPUT, "error", str(exc)
    if isinstance(exc, OSError):
        return EXIT_BAD_INPUT, "error", f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def guard(*, as_json: bool = False, unreachable: int = EXIT_FAILED) -> Iterator[None]:
    """Every failure a command expects ends it with one line and an exit status: a check that failed (the
    ledger's records do not hold together) 1; the contract's refusal or bad input 2; the ledger or the
    orderer unreachable, or a transaction that failed, ``unreachable``."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - what is not expected is re-raised as it is
        known = _explain(exc, unreachable)
        if known is None:
            raise
        code, prefix, message = known
        fail(message, code, as_json=as_json, prefix=prefix)


# ---- where a command acts, and the one way it talks to the ledger
@dataclass(frozen=True)
class Where:
    """The consortium as this site (its run directory) sees it, and the org a command acts as."""

    config: "ConsortiumConfig"
    org: "PeerOrg"
    run_dir: Path

    @property
    def layout(self) -> "Layout":
        from ..network.layout import Layout

        return Layout(self.run_dir, self.config)


@dataclass(frozen=True)
class Session(Where):
    """A command's connection to the ledger: the org's gateway and its client of the contract."""

    gateway: Any
    client: Any


def where(org: str, config: Optional[Path], run_dir: Optional[Path], *, as_json: bool = False) -> Where:
    """The consortium file with the orgs admitted later whose definitions the site imported, and ``org``
    in it; a bad consortium file or an unknown org ends the command (exit 2)."""
    from ..network import paths
    from ..network.config import ConfigError
    from ..network.definition import DefinitionError, load_site_config

    root = (run_dir or paths.run_dir()).resolve()
    try:
        cfg = load_site_config(config or paths.DEFAULT_CONFIG, root)
    except (ConfigError, DefinitionError, OSError) as exc:
        fail(f"bad consortium config: {exc}", as_json=as_json)
    try:
        me = cfg.org(org)
    except ConfigError:
        fail(f"unknown org {org!r} (consortium members: {', '.join(o.name for o in cfg.orgs)})", as_json=as_json)
    return Where(cfg, me, root)


def _open(here: Where, user: str, peer_org: Optional[str] = None) -> Session:
    from ..client import open_client

    gw, client = open_client(here.org.name, user, config=here.config, run_root=here.run_dir, peer_org=peer_org)
    return Session(here.config, here.org, here.run_dir, gw, client)


@contextmanager
def ledger(here: Where, user: str, *, as_json: bool = False, unreachable: int = EXIT_FAILED) -> Iterator[Session]:
    """``here.org``'s peer as ``user``, closed afterwards; what goes wrong inside ends the command (:func:`guard`)."""
    with guard(as_json=as_json, unreachable=unreachable):
        s = _open(here, user)
        with s.gateway:
            yield s


def query(org: str, user: str, config: Optional[Path], run_dir: Optional[Path], as_json: bool) -> Any:
    """:func:`ledger` as the ``audit`` and ``model`` commands open it: with ``--json`` errors are JSON too, and
    an unreachable ledger is bad input (exit 2), so that exit 1 always means a check failed."""
    return ledger(where(org, config, run_dir, as_json=as_json), user, as_json=as_json, unreachable=EXIT_BAD_INPUT)


@contextmanager
def peers(here: Where, user: str, *, as_json: bool = False) -> Iterator[dict[str, Any]]:
    """``{peer name: qscc}`` of every member's peer, each asked as ``here.org``'s ``user`` (any channel member
    may read), opened as :func:`ledger` opens one; unreachable is bad input (exit 2), as for every query."""
    with guard(as_json=as_json, unreachable=EXIT_BAD_INPUT), ExitStack() as stack:
        out = {}
        for o in here.config.orgs:
            s = _open(here, user, peer_org=o.name)
            stack.enter_context(s.gateway)
            out[f"{o.peer.name}.{o.name}"] = s.gateway.get_network(here.config.channel).qscc()
        yield out


def node_store(here: Where) -> Path:
    """The org's training node's artifact store: ``<run-dir>/fl/<org>/artifacts``."""
    return here.run_dir / "fl" / here.org.name / "artifacts"


# ---- output
def console() -> Any:
    """Rich console on stdout; piped output (no terminal, no $COLUMNS) gets 160 columns, not 80."""
    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, soft_wrap=False, width=160 if wide else None)


def said(text: str, *, markup: bool = False) -> None:
    """One line of what a command did, on stderr (stdout is for what it reports)."""
    from rich.console import Console

    Console(stderr=True).print(text, markup=markup, highlight=False, soft_wrap=True)


def table(title: str, *cols: str) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False)
    for c in cols:
        t.add_column(c, overflow="fold")
    return t


def emit_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def utc(t: Any) -> str:
    """A ledger timestamp (seconds) as UTC; ``-`` when there is none."""
    if not isinstance(t, int):
        return "-"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def metrics_text(raw: dict) -> str:
    """An org's reported metrics, scaled back from the ledger's integers: ``val_accuracy=0.93, …``."""
    from ..audit.common import scale_metric

    return ", ".join(f"{n}={v:.4g}" if isinstance(v, float) else f"{n}={v}"
                     for n, v in (scale_metric(k, x) for k, x in sorted((raw or {}).items()))) or "-"
