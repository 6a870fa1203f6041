"""The fast faces: `lastgood --help` lists commands from their summaries without importing
them, the summaries say what the commands' own docstrings say, and the quick paths import
none of the heavy libraries (the timing itself lives in benchmarks/cli_start.py)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import click
import pytest

from lastgood.cli.hooks import NO_WORLD
from lastgood.cli.main import COMMANDS, SUMMARIES, build_cli

HEAVY = ("sqlalchemy", "alembic", "numpy", "pydantic", "rich", "fastapi", "httpx", "fsspec")


def test_every_command_has_its_own_summary() -> None:
    cli = build_cli(NO_WORLD)
    ctx = click.Context(cli)
    assert set(SUMMARIES) == set(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        first = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")
        assert SUMMARIES[name] == (command.short_help or first), name


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_the_quick_paths_import_no_heavy_library(args: list[str]) -> None:
    probe = ("import sys\nfrom lastgood.bootstrap import main\nsys.argv = ['lastgood', *"
             f"{args!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    if args == ["--help"]:
        assert all(name in done.stdout for name in COMMANDS)
