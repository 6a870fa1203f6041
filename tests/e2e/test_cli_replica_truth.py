"""Status tells what is true now, with real `lastgood serve` replicas: a damaged stored artifact
of the rollback target makes status say "not ready" naming integrity (and `--force` is never the
advice), and a replica killed with SIGKILL is shown stale, with since when, and named by the
rollback that lost it during its confirmation."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_rollback import fill_history
from tests.e2e.test_cli_serve import wait_ready
from tests.net import free_port, wait_for

pytestmark = pytest.mark.slow
ENV = ("--env", "production")
STALE_AFTER_S = 15.0
HEARTBEAT_S = 5.0


def status(cli: Cli) -> dict[str, Any]:
    done = cli("status", "iris", *ENV, "--json")
    assert done.code == 0, done.err
    data: dict[str, Any] = done.json()
    return data


def replicas_by_url(cli: Cli) -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in status(cli)["replicas"]}


def flip_first_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def stored_file(cli: Cli, ref: str) -> Path:
    [first, *_] = cli("show", "iris", ref, "--json").json()["files"]
    sha = first["sha256"]
    return cli.home / "artifacts" / sha[:2] / sha


def start_replica(cli: Cli) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = cli.start("serve", *ENV, "--port", str(port))
    return proc, f"http://127.0.0.1:{port}"


def test_damage_and_a_killed_replica_are_told_as_they_are(tmp_path: Path, models: list[Path],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LASTGOOD_SMOKE_TEST", "off")
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)  # v1, v2 verified; v3 live
    procs = [start_replica(cli), start_replica(cli)]
    (_, url1), (killed, url2) = procs
    try:
        for _, url in procs:
            wait_ready(url)
        # both replicas report and prove their standby of v2: the way back is ready
        assert wait_for(lambda: bool((st := status(cli))["readiness"])
                        and st["readiness"]["ready"], timeout_s=60), status(cli)["readiness"]
        assert {r["liveness"] for r in status(cli)["replicas"]} == {"live"}

        # the target's stored bytes are damaged: status names the check that would fail
        target = stored_file(cli, "2")
        flip_first_byte(target)
        broken = status(cli)["readiness"]
        assert not broken["ready"]
        assert broken["check"] == "integrity"
        text = cli("status", "iris", *ENV).out
        assert "rollback NOT ready: v2: integrity: 1 of 1 artifact(s) fail their digest" in text
        refused = cli("rollback", "iris", *ENV, "--to", "2", "--force", "--reason", "bad node",
                      "--yes")
        assert_clean_error(refused, 4, "integrity", "integrity cannot be forced")
        assert "--force" not in refused.err
        flip_first_byte(target)  # restored from a backup
        assert status(cli)["readiness"]["ready"]

        # kill -9 one replica, then roll back at once: it was live when the switch began
        lost_id = replicas_by_url(cli)[url2]["replica_id"]
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        done = cli("rollback", "iris", *ENV, "--reason", "errors up", "--yes")
        assert done.code == 0, done.err
        assert f"lost during the switch: {lost_id} stopped reporting" in done.out
        events = cli("events", "--model", "iris", "--json").json()
        [lost] = [e for e in events if e["action"] == "replica.lost"]
        assert (lost["evidence"]["replica"], lost["evidence"]["liveness"]) == (lost_id, "stale")
        confirmed = [e for e in events if e["action"] == "switch.confirmed"][-1]
        assert confirmed["evidence"]["lost"][0]["replica"] == lost_id
        ops = cli("ops", "--model", "iris", "--json").json()
        assert ops[0]["trigger"]["lost_replicas"][0]["replica"] == lost_id

        # status agrees with the rollback: the killed replica is stale, with since when
        after = replicas_by_url(cli)
        assert after[url2]["liveness"] == "stale"
        assert (after[url1]["liveness"], after[url1]["version"]) == ("live", 2)
        table = cli("status", "iris", *ENV).out
        assert "stale since" in table
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        errs = [proc.communicate(timeout=30)[1] for proc, _ in procs]
    assert not any("Traceback" in e for e in errs), errs


def test_a_killed_replica_turns_stale_within_the_stale_window(tmp_path: Path,
                                                              models: list[Path],
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        lg.register("iris", models[0])
        lg.deploy("iris", 1, env="production", reason="release")
    proc, url = start_replica(cli)
    try:
        wait_ready(url)
        assert wait_for(lambda: url in replicas_by_url(cli), timeout_s=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # its last report is at most one heartbeat old: stale once the window has passed
        assert wait_for(lambda: replicas_by_url(cli)[url]["liveness"] == "stale",
                        timeout_s=STALE_AFTER_S + HEARTBEAT_S + 5, poll_s=0.5)
        seen = replicas_by_url(cli)[url]
        assert seen["state"] == "serving"  # what it last said; the liveness tells the truth
        assert "stale since" in cli("status", "iris", *ENV).out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
