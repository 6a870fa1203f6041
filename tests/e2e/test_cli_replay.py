"""Replay as a user sees it: `lastgood serve` keeps today's traffic and replays it on its warm
standbys; `status`, `/metrics` and `rollback --dry-run` show a verified version failing on a new
category with the example; `rollback --yes` refuses it and picks the next verified version that
answers today's traffic; a restarted replica says it has no replay data yet; and
`--replay-reservoir 0` turns every part off and says so."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_serve import wait_ready
from tests.net import free_port, wait_for
from tests.replay_models import build_city_versions, todays_records

ENV = ("--env", "production")
MODEL = "city"


@pytest.fixture(scope="module")
def city_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_city_versions(tmp_path_factory.mktemp("city"))


def setup_city(home: Path, dirs: list[Path]) -> None:
    """v1 and v2 verified in turn, v3 live (not yet verified)."""
    with Lastgood(home=home, actor="setup") as lg:
        for path in dirs:
            lg.register(MODEL, path)
        for n in (1, 2, 3):
            lg.deploy(MODEL, n, env="production", reason=f"release {n}")
            if n < 3:
                lg.verify(MODEL, env="production", baseline={"error_rate": 0.01},
                          reason="baked")


def send_traffic(url: str, count: int) -> None:
    """Today's requests through two doors: the native one and MLflow's `/invocations`."""
    import pandas as pd

    records = todays_records(count)
    with httpx.Client(timeout=10) as client:
        for i, record in enumerate(records):
            if i % 2:
                answer = client.post(f"{url}/v1/models/{MODEL}/predict",
                                     json={"records": [record]})
            else:
                frame = pd.DataFrame([record])
                answer = client.post(f"{url}/invocations",
                                     json={"dataframe_split": frame.to_dict(orient="split")})
            assert answer.status_code == 200, answer.text


def wait_replay(cli: Cli, until: Any, timeout: float = 90) -> dict[str, Any]:
    found: list[dict[str, Any] | None] = [None]

    def got_there() -> bool:
        found[0] = cli("status", MODEL, *ENV, "--json").json()["replay"]
        return bool(found[0]) and bool(until(found[0]))

    if wait_for(got_there, timeout_s=timeout, poll_s=0.5) and found[0] is not None:
        return found[0]
    raise AssertionError(f"the replay never got there: {found[0]}")


def stop(server: subprocess.Popen[str]) -> str:
    server.send_signal(signal.SIGTERM)
    return server.communicate(timeout=30)[1]


def start(cli: Cli, port: int, *extra: str) -> subprocess.Popen[str]:
    server = cli.start("serve", *ENV, "--port", str(port), "--standby", "2",
                       "--readiness-interval", "1", *extra)
    wait_ready(f"http://127.0.0.1:{port}")
    return server


@pytest.mark.slow
def test_a_verified_version_that_fails_on_todays_traffic_is_refused_with_the_example(
        tmp_path: Path, city_dirs: list[Path]) -> None:
    cli = Cli(home=tmp_path / "home")
    setup_city(cli.home, city_dirs)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(cli, port)
    try:
        assert wait_replay(cli, lambda r: True)["outcome"] == "no_data"  # nothing served yet
        send_traffic(url, 40)
        replay = wait_replay(cli, lambda r: r["replayed"] == 40)
        # status judges the first rollback target, v2: it cannot encode marseille
        assert replay["outcome"] == "failed"
        assert replay["version"] == 2
        assert replay["failed"] == 10
        assert replay["replayed"] == 40
        assert "v2 fails on 10 of 40 recent requests: city='marseille'" in replay["summary"]
        assert "unknown categor" in replay["summary"]
        assert "replay: v2 fails on 10 of 40" in cli("status", MODEL, *ENV).out

        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert 'lastgood_replay_failures{env="production",model="city",version="2"} 10.0' \
            in metrics
        assert 'lastgood_replay_failures{env="production",model="city",version="1"} 0.0' \
            in metrics
        assert 'lastgood_replay_agreement{env="production",model="city",version="1"}' in metrics

        plan = cli("rollback", MODEL, *ENV, "--dry-run")
        assert plan.code == 0, plan.err
        assert "target: v1" in plan.out
        assert "replay v2: v2 fails on 10 of 40 recent requests: city='marseille'" in plan.out
        assert "the data pipeline changed since v2" in plan.out
        assert "replay v1: v1 answered all 40 recent requests; v1 agrees with live v3 on" \
            in plan.out
        assert "of the last hour's requests" in plan.out

        done = cli("rollback", MODEL, *ENV, "--reason", "errors", "--yes", "--json")
        assert done.code == 0, done.err
        op = done.json()
        assert op["target_version"] == 1
        [refused] = [c for c in op["candidates"] if c["version"] == 2]
        assert any(r.startswith("replay: v2 fails on 10 of 40 recent requests")
                   for r in refused["refusals"])
        [chosen] = [c for c in op["candidates"] if c["version"] == 1]
        [check] = [c for c in chosen["checks"] if c["name"] == "replay"]
        assert check["status"] == "pass"
        assert check["evidence"]["replayed"] == 40
        events = [json.loads(line) for line in cli("audit", "export").out.splitlines()]
        checked = [e for e in events if e["action"] == "operation.checked"]
        assert checked
        candidates = checked[-1]["evidence"]["candidates"]
        assert any("replay: v2 fails on" in r for c in candidates for r in c["refusals"])
    finally:
        stop(server)

    # A restarted replica has an empty reservoir: it says so, never a pass.
    server = start(cli, port)
    try:
        replay = wait_replay(cli, lambda r: r["replicas"] or r["outcome"] == "no_data")
        assert replay["outcome"] == "no_data"
        assert replay["summary"].startswith("no replay data yet")
        plan = cli("rollback", MODEL, *ENV, "--dry-run", "--json").json()
        checks = [c for cand in plan["candidates"] for c in cand["checks"]
                  if c["name"] == "replay"]
        assert checks
        assert all(c["status"] == "warn" for c in checks)
        assert all("no replay data yet" in c["summary"] for c in checks)
    finally:
        stop(server)


@pytest.mark.slow
def test_replay_reservoir_zero_turns_every_part_off_and_says_so(
        tmp_path: Path, city_dirs: list[Path]) -> None:
    cli = Cli(home=tmp_path / "home")
    setup_city(cli.home, city_dirs)
    port = free_port()
    server = start(cli, port, "--replay-reservoir", "0")
    try:
        send_traffic(f"http://127.0.0.1:{port}", 8)
        replay = wait_replay(cli, lambda r: r["outcome"] != "no_data")
        assert replay["outcome"] == "off"
        assert "--replay-reservoir 0" in replay["summary"]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'lastgood_replay_reservoir_requests{env="production",model="city"} 0.0' in metrics
        plan = cli("rollback", MODEL, *ENV, "--dry-run", "--json").json()
        [target] = [c for c in plan["candidates"] if c["version"] == plan["target"]]
        [check] = [c for c in target["checks"] if c["name"] == "replay"]
        assert check["status"] == "skip"
        assert "turned off" in check["summary"]
    finally:
        err = stop(server)
    assert "replay is off (--replay-reservoir 0)" in err


@pytest.mark.parametrize(("args", "words"), [
    (("--replay-reservoir", "-1"), ("--replay-reservoir -1 is outside 0..100000",)),
    (("--replay-reservoir", "1000001"), ("--replay-reservoir",)),
    (("--replay-window", "10"), ("--replay-window 10 s is outside 60..604800 s",)),
    (("--replay-window", "nan"), ("--replay-window nan s",)),
])
def test_an_unusable_reservoir_is_refused_at_start(tmp_path: Path, args: tuple[str, ...],
                                                   words: tuple[str, ...]) -> None:
    cli = Cli(home=tmp_path / "home")
    assert_clean_error(cli("serve", *ENV, *args), 2, *words)
