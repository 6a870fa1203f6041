"""The quarantine's lifecycle as a user types it: a rollback's cause, `quarantine list`,
`quarantine lift` (CLI, SDK, remote CLI and REST against a real `lastgood server`), `verify` of a
quarantined version, and every bad input refused in one line."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_remote import Remote
from tests.e2e.test_cli_rollback import fill_history, live_version

ENV = ("--env", "production")


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LASTGOOD_SMOKE_TEST", "off")
    db_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return Cli(home=tmp_path / "home", db_url=db_url, extra_env={"LASTGOOD_SMOKE_TEST": "off"})


def sdk(cli: Cli) -> Lastgood:
    return Lastgood(home=cli.home, db_url=cli.db_url, actor="setup")


def events(cli: Cli, action: str) -> list[dict[str, Any]]:
    return [e for e in cli("events", "--json").json() if e["action"] == action]


def status_of(cli: Cli, ref: str) -> str:
    return str(cli("show", "iris", ref, "--json").json()["status"])


def test_infra_cause_keeps_the_replaced_version_a_target(cli: Cli, models: list[Path]) -> None:
    with sdk(cli) as lg:
        fill_history(lg, models, verify_second=True)  # v1, v2 verified; v3 live
    done = cli("rollback", "iris", *ENV, "--reason", "the node was bad", "--cause", "infra",
               "--yes", "--json")
    assert done.code == 0, done.err
    op = done.json()
    assert (op["from_version"], op["target_version"], op["cause"]) == (3, 2, "infra")
    assert status_of(cli, "3") == "active"
    kept = events(cli, "version.kept")
    assert [e["evidence"]["cause"] for e in kept] == ["infra"]
    assert events(cli, "operation.planned")[-1]["after"]["cause"] == "infra"
    assert events(cli, "version.quarantined") == []
    text = cli("rollback", "iris", *ENV, "--reason", "unsure", "--cause", "unknown", "--yes")
    assert text.code == 0, text.err
    assert "kept as a target (cause unknown)" in text.out
    assert status_of(cli, "2") == "active"
    assert cli("quarantine", "list", "--json").json() == []
    if cli.db_url is None:  # empty settings are unset: the same embedded registry
        same = cli("quarantine", "list", "--json", env={"LASTGOOD_DB_URL": "",
                                                        "LASTGOOD_STORE_URL": ""})
        assert same.code == 0, same.err
        assert cli("ops", "--json", env={"LASTGOOD_DB_URL": ""}).json()[0]["cause"] == "unknown"


def test_lift_then_verify_and_every_refusal(cli: Cli, models: list[Path]) -> None:
    with sdk(cli) as lg:
        fill_history(lg, models, verify_second=True)
    assert cli("rollback", "iris", *ENV, "--reason", "errors up", "--yes").code == 0
    assert status_of(cli, "3") == "quarantined"
    listed = cli("quarantine", "list", "--json").json()
    assert [(q["name"], q["version"], q["cause"], q["quarantine_reason"]) for q in listed] == [
        ("iris", 3, "model", "errors up")]
    assert "iris" in cli("quarantine", "list").out
    # a quarantined version deployed by force cannot be verified: the refusal names the lift
    assert cli("deploy", "iris", "3", *ENV, "--reason", "try again", "--force").code == 0
    refused = cli("verify", "iris", *ENV, "--metric", "error_rate=0.01", "--reason", "ok")
    assert_clean_error(refused, 2, "quarantined", "quarantine lift iris 3")
    # bad inputs: no reason, not quarantined, retired, unknown version
    assert_clean_error(cli("quarantine", "lift", "iris", "3"), 2, "needs a reason")
    assert_clean_error(cli("quarantine", "lift", "iris", "3", "--reason", "  "), 2, "reason")
    assert_clean_error(cli("quarantine", "lift", "iris", "1", "--reason", "x"), 2,
                       "not quarantined")
    assert cli("retire", "iris", "1", "--reason", "old").code == 0
    assert_clean_error(cli("quarantine", "lift", "iris", "v1.0", "--reason", "x"), 2,
                       "retired")
    assert_clean_error(cli("quarantine", "lift", "iris", "9", "--reason", "x"), 2, "9")
    assert len(events(cli, "quarantine.lift.refused")) == 5
    lifted = cli("quarantine", "lift", "iris", "v3.0", "--reason", "the node was bad",
                 "--json")
    assert lifted.code == 0, lifted.err
    assert lifted.json()["status"] == "active"
    [event] = events(cli, "quarantine.lifted")
    assert (event["actor"], event["reason"], event["before"]["status"]) == (
        "oncall", "the node was bad", "quarantined")
    assert cli("quarantine", "list", "--json").json() == []
    assert cli("verify", "iris", *ENV, "--metric", "error_rate=0.01", "--reason", "ok").code == 0
    assert live_version(cli) == 3


def test_sdk_lift_and_cause(cli: Cli, models: list[Path]) -> None:
    with sdk(cli) as lg:
        fill_history(lg, models, verify_second=True)
        op = lg.rollback("iris", env="production", reason="bad model")
        assert op.cause == "model"
        assert [q.version.number for q in lg.quarantined()] == [3]
        assert lg.lift_quarantine("iris", 3, reason="it was the feature store").status == (
            "active")
        assert lg.quarantined() == []
        op = lg.rollback("iris", env="production", reason="node", cause="infra")
        assert (op.from_version, op.cause) == (2, "infra")
        assert lg.show("iris", 2).status == "active"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    server = Remote(tmp_path_factory.mktemp("server") / "home")
    for owner, role in (("vic", "viewer"), ("olga", "operator")):
        server.token(owner, role)
    proc = server.start()
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_lift_over_the_control_plane(remote: Remote, models: list[Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LASTGOOD_SMOKE_TEST", "off")
    with Lastgood(home=remote.local.home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)
    done = remote("rollback", "iris", *ENV, "--reason", "errors", "--cause", "model", "--yes",
                  "--json")
    assert done.code == 0, done.err
    assert done.json()["cause"] == "model"
    listed = remote("quarantine", "list", "--json", role="viewer").json()
    assert [q["version"] for q in listed] == [3]
    denied = remote("quarantine", "lift", "iris", "3", "--reason", "x", role="viewer")
    assert_clean_error(denied, 7, "viewer")
    assert_clean_error(remote("quarantine", "lift", "iris", "3"), 2, "needs a reason")
    assert_clean_error(remote("quarantine", "lift", "iris", "2", "--reason", "x"), 2,
                       "not quarantined")
    url = f"{remote.url}/api/v1/models/iris/versions/3/quarantine/lift"
    as_op = {"Authorization": f"Bearer {remote.tokens['operator']}"}
    empty = httpx.post(url, json={"reason": ""}, headers=as_op, timeout=30)
    assert empty.status_code == 422
    assert "reason" in empty.json()["message"]
    viewer = httpx.post(url, json={"reason": "x"}, timeout=30,
                        headers={"Authorization": f"Bearer {remote.tokens['viewer']}"})
    assert viewer.status_code == 403
    lifted = remote("quarantine", "lift", "iris", "3", "--reason", "dns outage", "--json")
    assert lifted.code == 0, lifted.err
    assert lifted.json()["status"] == "active"
    again = httpx.post(url, json={"reason": "again"}, headers=as_op, timeout=30)
    assert again.status_code == 409, again.text
    assert "not quarantined" in again.json()["message"]
