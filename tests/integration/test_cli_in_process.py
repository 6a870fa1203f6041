"""`lastgood.testing.cli.LastgoodRunner` runs the command in the test's process: each command
here gives what the installed command gives in its own process (the reference: `python -m
lastgood` in a subprocess), exit code, stdout and stderr alike, on one real SQLite registry."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lastgood.sdk import Lastgood
from lastgood.testing.cli import LastgoodRunner
from tests.e2e.cli import Cli
from tests.helpers_models import IRIS_SCHEMA, train_iris_skops

SMOKE_OFF = {"LASTGOOD_SMOKE_TEST": "off"}
NOW = ("checked_at", "duration_ms", "memory_mb")
"""Keys that carry when the command ran, how long a check took and the host's free memory at
that moment: the two runs differ there and nowhere else."""


def _timeless(out: str) -> Any:
    """`out`, with a JSON document's moments and durations dropped."""
    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k not in NOW}
        if isinstance(value, list):
            return [drop(v) for v in value]
        return value

    try:
        return drop(json.loads(out))
    except json.JSONDecodeError:
        return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris v1 and v2 deployed and verified in production, v2 live."""
    home = tmp_path_factory.mktemp("in-process") / "home"
    with Lastgood(home=home, actor="setup") as lg:
        for number in (1, 2):
            lg.register("iris", train_iris_skops(home.parent / f"iris-{number}.skops"),
                        schema=IRIS_SCHEMA)
            lg.deploy("iris", number, env="production", reason="release")
            lg.verify("iris", env="production", baseline={"error_rate": 0.0}, reason="baked")
    return home


READING = [
    ("models", "--json"),
    ("versions", "iris"),
    ("status", "iris", "--env", "production", "--json"),
    ("rollback", "iris", "--env", "production", "--dry-run", "--json"),
    ("history", "iris", "--env", "production"),
    ("--version",),
]
REFUSED = [
    ("rollback", "iris", "--env", "production", "--to", "9", "--yes"),  # no such version
    ("show", "iris", "7"),
    ("rollback", "iris"),  # --env is missing: a usage error
    ("rolback", "iris"),  # a typo: the nearest command is named
    ("status", "nope", "--env", "production", "--json"),  # the error as JSON on stdout
]


@pytest.mark.parametrize("args", READING + REFUSED, ids=" ".join)
def test_in_process_equals_the_installed_command(home: Path, args: tuple[str, ...]) -> None:
    reference = Cli(home=home, extra_env={**SMOKE_OFF, "LASTGOOD_ACTOR": "tester"})(*args)
    found = LastgoodRunner(home=home, env=SMOKE_OFF).invoke(*args)
    assert found.exception is None, found.exception
    assert (found.code, _timeless(found.out), found.err) == (
        reference.code, _timeless(reference.out), reference.err)
    if args in REFUSED:
        assert found.code != 0
        assert found.err.strip() or found.json()["error"]


def _untimed(table: str) -> list[str]:
    """The lines of a rendered plan, each check's duration (its last cell) masked and the
    table's padding squeezed (a wider duration widens its column)."""
    lines = [re.sub(r"│ +[0-9.]+ +│$", "│ ms │", line) for line in table.splitlines()]
    return [re.sub(r"([ ━─])\1+", r"\1", line) for line in lines]


def test_an_answer_at_the_prompt_is_typed_in_process(home: Path) -> None:
    args = ("rollback", "iris", "--env", "production", "--reason", "p95 doubled")
    reference = Cli(home=home, extra_env={**SMOKE_OFF, "LASTGOOD_ACTOR": "tester"})(
        *args, answer="n\n")
    found = LastgoodRunner(home=home, env=SMOKE_OFF).invoke(*args, input="n\n")
    shown, expected = _untimed(found.out), _untimed(reference.out)
    # the runner echoes what was typed after the prompt, as a terminal shows it
    assert shown == [*expected[:-1], expected[-1] + "n"]
    assert (found.code, found.err) == (reference.code, reference.err)
    assert found.code != 0  # declined: nothing rolled back
    status = LastgoodRunner(home=home, env=SMOKE_OFF).invoke(
        "status", "iris", "--env", "production", "--json").json()
    assert status["desired"]["version"] == 2, status
