"""Deploy, verify, roll back through the `lastgood` command, on SQLite and PostgreSQL:
target choice, exit codes, conflicts, and crash drills that kill -9 a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.domain.versions import GoldenExample
from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.helpers_models import (
    IRIS_COLUMNS,
    IRIS_SCHEMA,
    iris_records,
    train_iris,
)
from tests.net import wait_for

ENV = ("--env", "production")


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The CLI on a fresh registry. The smoke test (a fresh interpreter per candidate) is
    turned off here to keep the suite fast; test_rollback_round_trip runs it for real."""
    smoke_off = {"LASTGOOD_SMOKE_TEST": "off"}
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LASTGOOD_SMOKE_TEST", "off")
    if request.param == "sqlite":
        yield Cli(home=tmp_path / "home", extra_env=smoke_off)
    else:
        yield Cli(home=tmp_path / "home", db_url=request.getfixturevalue("pg_url"),
                  extra_env=smoke_off)


def sdk(cli: Cli) -> Lastgood:
    """The same registry through the Python SDK, in this process (fast set-up)."""
    return Lastgood(home=cli.home, db_url=cli.db_url, actor="setup")


def setup_history(cli: Cli, models: list[Path], *, verify_second: bool = True) -> None:
    """v1 verified, v2 verified (or not), v3 live and unverified — set up through the SDK."""
    with sdk(cli) as lg:
        fill_history(lg, models, verify_second=verify_second)


def fill_history(lg: Lastgood, models: list[Path], *, verify_second: bool) -> None:
    records = iris_records(4)
    model = train_iris()
    outputs = model.predict([[r[c] for c in IRIS_COLUMNS] for r in records])
    golden = [GoldenExample(r, int(out)) for r, out in zip(records, outputs, strict=True)]
    for i, path in enumerate(models, start=1):
        lg.register("iris", path, tag=f"v{i}.0", schema=IRIS_SCHEMA, golden=golden)
    for n in (1, 2, 3):
        lg.deploy("iris", n, env="production", reason=f"release {n}")
        if n == 1 or (n == 2 and verify_second):
            lg.verify("iris", env="production", baseline={"error_rate": 0.01}, reason="baked")


def live_version(cli: Cli) -> int:
    return int(cli("status", "iris", *ENV, "--json").json()["desired"]["version"])


def test_rollback_round_trip(cli: Cli, models: list[Path], tmp_path: Path) -> None:
    setup_history(cli, models, verify_second=False)
    smoke_on = {"LASTGOOD_SMOKE_TEST": "on"}
    plan = cli("rollback", "iris", *ENV, "--dry-run", "--json", env=smoke_on).json()
    assert plan["target"] == 1
    checks = {c["name"]: c["status"] for c in plan["candidates"][-1]["checks"]}
    assert checks["smoke"] == "pass"
    assert checks["integrity"] == "pass"
    assert live_version(cli) == 3
    assert_clean_error(cli("rollback", "iris", *ENV, "--yes"), 2, "reason")
    done = cli("rollback", "iris", *ENV, "--reason", "errors up", "--yes", "--json",
               env=smoke_on)
    assert done.code == 0, done.err
    op = done.json()
    assert (op["from_version"], op["target_version"], op["phase"]) == (3, 1, "succeeded")
    refused = {c["version"]: c["refusals"] for c in op["candidates"]}
    assert refused[2] == ["was never verified in production"]
    assert live_version(cli) == 1
    assert cli("show", "iris", "3", "--json").json()["status"] == "quarantined"
    archives = cli("archive", "list", "--json").json()
    assert archives[0]["version"] == 3
    exported = tmp_path / "incident.tar"
    assert cli("archive", "export", archives[0]["id"], str(exported)).code == 0
    assert exported.stat().st_size == archives[0]["size"]
    history = cli("history", "iris", *ENV, "--json").json()
    assert [(d["version"], d["end"]) for d in history][:2] == [(1, None), (3, "rolled_back")]
    assert cli("audit", "verify", "--json").json()["ok"] is True
    lines = cli("audit", "export").out.strip().splitlines()
    assert json.loads(lines[-1])["action"] == "operation.succeeded"


def test_confirmed_rollback_runs_the_plan_shown_and_a_no_changes_nothing(
        cli: Cli, models: list[Path]) -> None:
    setup_history(cli, models)
    no_reason = cli("rollback", "iris", *ENV, answer="y\n")
    assert_clean_error(no_reason, 2, "rollback needs a reason")
    assert no_reason.out == ""  # refused before any plan was made or shown
    declined = cli("rollback", "iris", *ENV, "--reason", "errors up", answer="n\n")
    assert declined.code == 8, declined.err
    assert "aborted: nothing changed" in declined.err
    assert live_version(cli) == 3
    done = cli("rollback", "iris", *ENV, "--reason", "errors up", answer="y\n")
    assert done.code == 0, done.err
    assert "target: v2" in done.out
    assert "rolled back iris in production: v3 → v2" in done.out
    assert live_version(cli) == 2
    events = [json.loads(line) for line in cli("audit", "export").out.strip().splitlines()]
    planned = [e for e in events if e["action"] == "operation.planned"][-1]
    confirmed = planned["after"]["confirmed"]
    assert (confirmed["by"], confirmed["target"]) == ("oncall", 2)
    assert confirmed["plan"].startswith("plan-")
    assert confirmed["plan"] in done.out


def test_no_eligible_target_exit_4_changes_nothing(cli: Cli, models: list[Path]) -> None:
    with sdk(cli) as lg:
        for path in models[:2]:
            lg.register("iris", path)
        lg.deploy("iris", 1, env="production", reason="r")
        lg.deploy("iris", 2, env="production", reason="r")
    before = cli("history", "iris", *ENV, "--json").json()
    result = cli("rollback", "iris", *ENV, "--reason", "bad", "--yes")
    assert_clean_error(result, 4, "no eligible rollback target", "v1", "never verified")
    assert cli("history", "iris", *ENV, "--json").json() == before
    assert cli("events", "--json").json()[-1]["outcome"] == "refused"


def test_unknown_env_and_quarantined_to(cli: Cli, models: list[Path]) -> None:
    setup_history(cli, models)
    assert_clean_error(cli("rollback", "iris", "--env", "prod", "--reason", "x", "--yes"), 2,
                       "prod")
    assert cli("rollback", "iris", *ENV, "--reason", "x", "--yes").code == 0
    back = cli("rollback", "iris", *ENV, "--reason", "x", "--to", "3", "--yes")
    assert_clean_error(back, 4, "quarantined")


def wait_for_phase(cli: Cli, phase: str, timeout: float = 60) -> dict[str, object]:
    seen: list[dict[str, object]] = []

    def reached() -> bool:
        ops = cli("status", "iris", *ENV, "--json").json()["unfinished"]
        seen[:] = ops[:1]
        return bool(ops) and ops[0]["phase"] == phase

    assert wait_for(reached, timeout_s=timeout, poll_s=0.3), f"never reached {phase}: {seen}"
    return dict(seen[0])


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["planned", "checking", "switching", "confirming",
                                   "archiving", "verifying"])
def test_kill_at_each_phase_boundary_then_resume(cli: Cli, models: list[Path],
                                                 phase: str) -> None:
    setup_history(cli, models)
    proc = cli.start("rollback", "iris", *ENV, "--reason", "drill", "--yes",
                     env={"LASTGOOD_HALT_AFTER": phase})
    try:
        wait_for_phase(cli, phase)
        mid = live_version(cli)
        assert mid in (3, 2)  # only ever the old or the target version
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    resumed = cli("resume", "--json")
    assert resumed.code == 0, resumed.err
    assert [op["phase"] for op in resumed.json()] == ["succeeded"]
    assert live_version(cli) == 2
    assert cli("show", "iris", "3", "--json").json()["status"] == "quarantined"
    assert len(cli("archive", "list", "--json").json()) == 1
    assert cli("audit", "verify", "--json").json()["ok"] is True


@pytest.mark.slow
def test_concurrent_rollback_conflicts_then_later_command_completes(
        cli: Cli, models: list[Path]) -> None:
    setup_history(cli, models)
    first = cli.start("rollback", "iris", *ENV, "--reason", "first", "--yes",
                      env={"LASTGOOD_HALT_AFTER": "switching"})
    try:
        wait_for_phase(cli, "switching")
        second = cli("rollback", "iris", *ENV, "--reason", "second", "--yes")
        assert_clean_error(second, 3, "operation")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    later = cli("deploy", "iris", "1", *ENV, "--reason", "after the crash", "--json")
    assert later.code == 0, later.err
    ops = cli("status", "iris", *ENV, "--json").json()
    assert ops["unfinished"] == []
    assert live_version(cli) == 1
    archives = cli("archive", "list", "--json").json()
    assert [a["version"] for a in archives] == [3]  # the crashed rollback was completed
    assert cli("audit", "verify", "--json").json()["ok"] is True


@pytest.mark.slow
def test_rollback_names_the_crashed_operation_it_finished_first(cli: Cli,
                                                                models: list[Path]) -> None:
    setup_history(cli, models)
    first = cli.start("rollback", "iris", *ENV, "--reason", "first", "--yes",
                      env={"LASTGOOD_HALT_AFTER": "switching"})
    try:
        crashed = wait_for_phase(cli, "switching")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    again = cli("rollback", "iris", *ENV, "--reason", "still bad", "--yes", "--json")
    assert again.code == 0, again.err
    done = again.json()
    assert done["resumed"] == [crashed["id"]]
    assert (done["from_version"], done["target_version"]) == (2, 1)
    assert cli("audit", "verify", "--json").json()["ok"] is True


def test_tampered_event_row_detected(cli: Cli, models: list[Path]) -> None:
    with sdk(cli) as lg:
        lg.register("iris", models[0])
        lg.register("iris", models[1])
    import sqlalchemy as sa

    url = cli.db_url or f"sqlite:///{cli.home / 'registry.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE events SET actor = 'mallory' WHERE seq = 1"))
    engine.dispose()
    result = cli("audit", "verify")
    assert_clean_error(result, 1, "#1", "edited")



LOADED_DRIVERS = """
import runpy, sys
sys.argv = ["lastgood", *sys.argv[1:]]
try:
    runpy.run_module("lastgood", run_name="__main__")
except SystemExit as done:
    code = done.code
print(sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "alembic", "psycopg"}),
      code, file=sys.stderr)
"""


@pytest.mark.parametrize("command", [("status", "iris", *ENV),
                                     ("rollback", "iris", *ENV, "--dry-run"),
                                     ("rollback", "iris", *ENV, "--reason", "drill", "--yes")])
def test_status_and_rollback_import_no_database_framework(
        cli: Cli, models: list[Path], command: tuple[str, ...]) -> None:
    """What keeps the escape hatch quick to start: the registry is read and written through the
    database's own driver (the standard library's sqlite3, or psycopg), never SQLAlchemy."""
    setup_history(cli, models)
    done = subprocess.run([sys.executable, "-c", LOADED_DRIVERS, *command], env=cli.env(),
                          capture_output=True, text=True, timeout=120, check=False)
    drivers, code = done.stderr.strip().splitlines()[-1].rsplit(" ", 1)
    assert code == "0", done.stderr
    assert live_version(cli) == (2 if command[-1] == "--yes" else 3)
    assert drivers == ("[]" if cli.db_url is None else "['psycopg']")
