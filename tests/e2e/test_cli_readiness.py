"""Rollback readiness as a user sees it: `lastgood serve` proves its warm standby, `status`
and `/metrics` say so, and `lastgood rollback` passes its smoke check on that evidence; an
unusable readiness interval is refused at start with the fix."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_rollback import fill_history
from tests.e2e.test_cli_serve import wait_ready
from tests.net import free_port, wait_for

ENV = ("--env", "production")


@pytest.mark.parametrize("value", ["0", "-5", "1e9"])
def test_an_unusable_readiness_interval_is_refused_at_start(tmp_path: Path, value: str) -> None:
    cli = Cli(home=tmp_path / "home")
    found = cli("serve", *ENV, "--readiness-interval", value)
    assert_clean_error(found, 2, "readiness interval", "--readiness-interval",
                       "LASTGOOD_READINESS_INTERVAL_S")


def test_an_unusable_readiness_interval_variable_is_refused(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    negative = cli("serve", *ENV, env={"LASTGOOD_READINESS_INTERVAL_S": "-1"})
    assert_clean_error(negative, 2, "LASTGOOD_READINESS_INTERVAL_S='-1'")
    absurd = cli("serve", *ENV, env={"LASTGOOD_READINESS_INTERVAL_S": "100000"})
    assert_clean_error(absurd, 2, "readiness interval 100000 s is outside 1..86400 s")


def wait_proven(cli: Cli, timeout: float = 60) -> dict[str, object]:
    found: dict[str, object] = {}

    def proven() -> bool:
        found.clear()
        found.update(cli("status", "iris", *ENV, "--json").json()["readiness"] or {})
        return bool(found.get("ready"))

    assert wait_for(proven, timeout_s=timeout, poll_s=0.5), f"never proven: {found}"
    return dict(found)


@pytest.mark.slow
def test_serve_proves_its_standby_and_the_rollback_uses_the_proof(
        tmp_path: Path, models: list[Path]) -> None:
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "on"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = cli.start("serve", *ENV, "--port", str(port), "--readiness-interval", "2")
    try:
        wait_ready(url)
        readiness = wait_proven(cli)
        assert readiness["version"] == 2
        assert "rollback ready: v2, proven" in cli("status", "iris", *ENV).out
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert 'lastgood_rollback_ready{env="production",model="iris",version="2"} 1.0' in metrics
        assert "lastgood_rollback_evidence_age_seconds{" in metrics
        done = cli("rollback", "iris", *ENV, "--reason", "errors", "--yes", "--json")
        assert done.code == 0, done.err
        op = done.json()
        assert op["target_version"] == 2
        [target] = [c for c in op["candidates"] if c["version"] == 2]
        [smoke] = [c for c in target["checks"] if c["name"] == "smoke"]
        assert smoke["status"] == "pass"
        assert smoke["summary"].startswith("reproduced 4/4 on the warm standby of 1/1 replicas")
        assert smoke["evidence"]["source"] == "readiness"
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
