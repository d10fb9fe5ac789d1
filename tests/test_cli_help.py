"""Every `--help` page renders, shows every default (hand-written ones too, which rich markup
used to eat as tags), and `apivigil --help` lists the daily commands first."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
import typer
from typer.testing import CliRunner

from monitor.cli import app


def pages(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    # typer's groups are not click.Group subclasses in every typer version: duck-typed
    for name, sub in getattr(command, "commands", {}).items():
        yield from pages(sub, (*path, name))


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.integration
def test_every_help_page_shows_every_default() -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    checked = 0
    for path, command in pages(root):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        page = flat(result.output)
        for param in command.params:
            written = re.findall(r"\[default: [^\]]*\]", getattr(param, "help", None) or "")
            for default in written:
                assert flat(default) in page, (path, param.name, default)
                checked += 1
            shown = getattr(param, "show_default", False) and not getattr(param, "is_flag", True)
            if shown and param.default not in (None, False, ()):
                assert "[default: " in page, (path, param.name)
    assert checked >= 17


@pytest.mark.unit
def test_the_command_list_starts_with_the_daily_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"})
    listed = re.findall(r"^  (\w+)\s", result.output.partition("Commands:")[2], re.MULTILINE)
    assert listed[:4] == ["run", "scan", "findings", "report"], listed
    assert sorted(listed) == sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
