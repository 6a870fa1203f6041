"""The fast faces: `lastgood --help` lists each command with what its own docstring says
without importing it, and the quick paths import none of the heavy libraries (the timing
itself lives in benchmarks/cli_start.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from lastgood.cli.app import LastgoodGroup, summary_in_source
from lastgood.cli.main import COMMANDS, cli
from lastgood.testing.cli import LastgoodRunner

HEAVY = ("sqlalchemy", "alembic", "numpy", "pydantic", "rich", "fastapi", "httpx", "fsspec")
NOT_FOR_READING = ("alembic", "cryptography", "yaml", "numpy", "fastapi", "uvicorn", "httpx",
                   "mlflow", "rich.progress", "lastgood.services.mlflow_loop",
                   "sqlalchemy.dialects.postgresql")
"""What `status` and `rollback --dry-run` on a SQLite registry at head do not need: no
migration tooling, no keys (the env requires no signature), no YAML, no model formats, no web
stack, no MLflow sync loop, no PostgreSQL dialect."""


def _listing(group: click.Group) -> str:
    ctx = click.Context(group, info_name="lastgood", terminal_width=100)
    formatter = ctx.make_formatter()
    group.format_commands(ctx, formatter)
    return formatter.getvalue()


def test_the_listing_reads_what_each_command_says_of_itself() -> None:
    ctx = click.Context(cli)
    imported = click.Group(commands={name: cli.get_command(ctx, name) for name in COMMANDS})
    assert all(summary_in_source(target) for target in COMMANDS.values())
    assert _listing(LastgoodGroup(lazy=COMMANDS)) == _listing(imported)
    assert summary_in_source("lastgood.cli.deploy_cmds:no_such_command") is None


def test_help_lists_every_command(tmp_path: Path) -> None:
    listed = LastgoodRunner(home=tmp_path).invoke("--help")
    assert listed.code == 0, listed.err
    assert all(f"  {name}  " in listed.out for name in COMMANDS), listed.out


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_the_quick_paths_import_no_heavy_library(args: list[str]) -> None:
    probe = ("import sys\nfrom lastgood.cli.main import main\nsys.argv = ['lastgood', *"
             f"{args!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    if args == ["--help"]:
        assert all(name in done.stdout for name in COMMANDS)


def _registry_with_a_rollback_target(home: Path) -> None:
    from lastgood.sdk import Lastgood
    from tests.helpers_models import IRIS_SCHEMA, train_iris_skops

    with Lastgood(home=home, actor="setup") as lg:
        for number in (1, 2):
            lg.register("iris", train_iris_skops(home.parent / f"iris-{number}.skops"),
                        schema=IRIS_SCHEMA)
            lg.deploy("iris", number, env="production", reason="release")
            lg.verify("iris", env="production", baseline={"error_rate": 0.0}, reason="baked")


@pytest.mark.parametrize("args", [["status", "iris", "--env", "production"],
                                  ["rollback", "iris", "--env", "production", "--dry-run"]])
def test_reading_the_registry_imports_only_what_it_needs(args: list[str], tmp_path: Path
                                                         ) -> None:
    home = tmp_path / "home"
    _registry_with_a_rollback_target(home)
    probe = ("import sys\nfrom lastgood.cli.main import main\nsys.argv = ['lastgood', *"
             f"{args!r}]\ntry:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
             f"print(code, sorted(m for m in {NOT_FOR_READING!r} if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True, env=env | {"LASTGOOD_HOME": str(home),
                                                             "LASTGOOD_SMOKE_TEST": "off"})
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr
