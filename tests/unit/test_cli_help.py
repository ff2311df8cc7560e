"""Every command and sub-command's help shows an ``Example:`` (as sqlite-utils' test suite checks)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from stockpipe.cli import app


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        out += _commands(sub, (*path, name))
    return out


COMMANDS = _commands(typer.main.get_command(app))


def test_the_tree_has_every_stage_command() -> None:
    names = {c[0] for c in COMMANDS if c}
    assert {"produce", "consume", "upload", "clean", "load", "transform", "quality", "run", "broker"} <= names
    assert ("broker", "start") in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "stockpipe")
def test_help_has_an_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output, f"`stockpipe {' '.join(command)} --help` shows no example"
