"""Every command's ``--help`` page documents its positional arguments: the help text each argument
declares is printed on its page (Click 8.5 dropped typer 0.20's argument help; pyproject keeps click
below 8.5 until a typer that renders it again can be installed next to flwr)."""
from __future__ import annotations

import click
import typer
from typer.testing import CliRunner

from fedfabric.cli import app


def _commands(cmd: click.Command, path: tuple[str, ...] = ()):
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _commands(sub, path + (name,))
    else:
        yield path, cmd


def test_every_argument_help_is_on_its_commands_page() -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    documented = 0
    for path, cmd in _commands(root):
        args = [p for p in cmd.params if isinstance(p, click.Argument) and getattr(p, "help", None)]
        if not args:
            continue
        page = runner.invoke(app, [*path, "--help"], terminal_width=400)
        assert page.exit_code == 0, (path, page.output)
        flat = " ".join(page.output.split())
        for a in args:
            words = " ".join(a.help.split())[:40]
            assert words in flat, f"fedfabric {' '.join(path)} --help omits {a.name}'s help {words!r}"
            documented += 1
    assert documented >= 20        # the CLI's positional arguments (job ids, files, MSP ids, amounts ...)
