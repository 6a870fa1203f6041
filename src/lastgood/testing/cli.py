"""Run the `lastgood` command inside a test's own process, as click ships `CliRunner`.

    runner = LastgoodRunner(home=tmp_path)
    result = runner.invoke("rollback", "iris", "--env", "production", "--dry-run")
    assert result.code == 0, result.err

The command sees only the LASTGOOD_ variables the runner was given (the caller's own are
unset), a wide terminal without colour, and empty standard input unless `input` is typed at
its prompt. Output is captured apart on stdout and stderr, as a user's terminal shows them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

__all__ = ["CliResult", "LastgoodRunner"]


@dataclass(frozen=True, slots=True)
class CliResult:
    """What one run of `lastgood` left: its exit code, its stdout and its stderr."""

    code: int
    out: str
    err: str
    exception: BaseException | None = None  # raised past the command's own error handling

    def json(self) -> Any:
        """Stdout read as the JSON a `--json` command prints."""
        return json.loads(self.out)


class LastgoodRunner:
    """Runs `lastgood ARGS` in this process against the registry under `home` (or `env`)."""

    def __init__(self, *, home: Path | None = None, actor: str = "tester",
                 env: Mapping[str, str] | None = None) -> None:
        inherited = {k: None for k in os.environ if k.startswith("LASTGOOD_")}
        given = {"LASTGOOD_ACTOR": actor, "COLUMNS": "200", "NO_COLOR": "1",
                 **({"LASTGOOD_HOME": str(home)} if home is not None else {}), **(env or {})}
        self.env: dict[str, str | None] = {**inherited, **given}

    def invoke(self, *args: str, input: str | None = None,
               env: Mapping[str, str] | None = None) -> CliResult:
        """Run `lastgood *args` to its exit; `input` is typed at its prompts."""
        from lastgood.cli.main import cli

        done = CliRunner().invoke(cli, list(args), input=input, env={**self.env, **(env or {})},
                                  prog_name="lastgood")
        unexpected = None if isinstance(done.exception, SystemExit) else done.exception
        return CliResult(done.exit_code, done.stdout, done.stderr, unexpected)
