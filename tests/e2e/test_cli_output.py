"""The CLI as a person reads it at 3 a.m.: metric names it knows, errors a script can parse,
times with their date and zone, suggestions for typos, tables that fit 80 columns."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, Result, assert_clean_error
from tests.helpers_models import IRIS_SCHEMA, train_iris_skops

ENV = ("--env", "production")
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    made = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=made.home, actor="setup") as lg:
        lg.register("iris", train_iris_skops(tmp_path / "iris.skops"), schema=IRIS_SCHEMA,
                    tag="v1.0")
        lg.deploy("iris", 1, env="production", reason="first release of the iris model")
    return made


def narrow(cli: Cli, *args: str) -> Result:
    return cli(*args, env={"COLUMNS": "80"})


@pytest.mark.parametrize(("given", "hint"), [
    ("acuracy=0.9", "did you mean accuracy?"), ("p95=3", "did you mean latency_p95_ms?"),
    ("custom.Revenue=1", "custom.<name>"), ("auc=0.9", "known names")])
def test_verify_refuses_an_unknown_metric_with_the_nearest_name(cli: Cli, given: str,
                                                                hint: str) -> None:
    assert_clean_error(cli("verify", "iris", *ENV, "--metric", given, "--reason", "by hand"),
                       2, hint)
    assert cli("status", "iris", *ENV, "--json").json()["desired"]["verified"] is None


def test_verify_speaks_the_vocabulary(cli: Cli) -> None:
    done = cli("verify", "iris", *ENV, "--metric", "p95_ms=41", "--metric", "accuracy=0.95",
               "--metric", "custom.revenue=12.5", "--reason", "by hand", "--json")
    assert done.code == 0, done.err
    assert done.json()["verified"]["baseline"] == {"latency_p95_ms": 41, "accuracy": 0.95,
                                                   "custom.revenue": 12.5}


def test_json_errors_are_json_on_stdout_with_the_exit_code(cli: Cli) -> None:
    missing = cli("status", "nope", *ENV, "--json")
    assert missing.code == 2
    assert missing.err == ""
    assert missing.json()["error"]["type"] == "NotFound"
    assert missing.json()["error"]["exit_code"] == 2
    assert "register" in missing.json()["error"]["fix"]
    usage = cli("status", "iris", "--json")  # --env is missing
    assert usage.code == 2
    assert usage.json()["error"] == {"type": "UsageError", "message": "Missing option '--env'.",
                                     "fix": "see --help", "exit_code": 2}
    typo = cli("verify", "iris", *ENV, "--metric", "acuracy=1", "--reason", "x", "--json")
    assert typo.code == 2
    assert "did you mean accuracy?" in typo.json()["error"]["message"]


def test_a_mistyped_command_suggests_the_nearest(cli: Cli) -> None:
    typo = cli("stauts", "iris", *ENV)
    assert typo.code == 2
    assert "Did you mean 'status'?" in typo.err
    assert "Traceback" not in typo.err
    nothing = cli("zzzzzz")
    assert nothing.code == 2
    assert "Did you mean" not in nothing.err


def test_times_carry_date_and_zone(cli: Cli) -> None:
    status = cli("status", "iris", *ENV)
    assert status.code == 0, status.err
    assert re.search(r"since \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC \(\d+ (s|min) ago\)",
                     status.out), status.out
    history = narrow(cli, "history", "iris", *ENV)
    assert "from (UTC)" in history.out
    assert STAMP.search(history.out), history.out


@pytest.mark.parametrize("args", [("events", "--model", "iris"), ("history", "iris", *ENV),
                                  ("versions", "iris"), ("models",)])
def test_tables_fit_80_columns_with_each_time_on_one_line(cli: Cli,
                                                          args: tuple[str, ...]) -> None:
    shown = narrow(cli, *args)
    assert shown.code == 0, shown.err
    assert max(len(line) for line in shown.out.splitlines()) <= 80, shown.out
    rows = [line for line in shown.out.splitlines() if line.startswith("│")
            and line.strip("│ ")]
    stamped = [line for line in rows if STAMP.search(line)]
    assert stamped, shown.out
    # a time is never broken over two lines: every stamped row has a whole stamp
    assert all(re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", line) for line in stamped)
    assert not any(re.search(r"│ \d{2}:\d{2}:\d{2}\s+│", line) for line in rows), shown.out


@pytest.mark.slow
def test_the_demos_last_line_names_the_lastgood_the_readme_installed(tmp_path: Path) -> None:
    """After `python3 -m venv .venv && .venv/bin/pip install -e .`, `lastgood` is not on PATH:
    the demo's closing hint must name `.venv/bin/lastgood`."""
    program = Path(sys.executable).parent / "lastgood"
    root = Path(sys.executable).parent.parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
    env |= {"LASTGOOD_HOME": str(tmp_path / "home"), "LASTGOOD_SMOKE_TEST": "off",
            "PATH": "/usr/bin:/bin", "COLUMNS": "80", "NO_COLOR": "1"}
    done = subprocess.run([str(program), "demo", "--no-watch"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    expected = f"{os.path.relpath(program, root)} status wine-quality --env production"
    assert expected in last, last
