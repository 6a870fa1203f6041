"""Shadow before switch, as a user sees it through a real `lastgood serve`: `deploy` loads the new
version as a standby on the replica, replays today's traffic on it, and only then moves traffic.
A version whose encoder raises on today's new category is refused with the example before any
request reaches it; `deploy --dry-run` shows the replay and moves nothing; a healthy version
shows its agreement with the live one; `--force` deploys past the replay and says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_replay import MODEL, send_traffic, start, stop
from tests.net import free_port, wait_for
from tests.replay_models import build_city_versions

ENV = ("--env", "production")


@pytest.fixture(scope="module")
def city_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_city_versions(tmp_path_factory.mktemp("city"))


def setup_live_v3(home: Path, dirs: list[Path]) -> None:
    """v1 (answers any city), v2 (raises on marseille) and v3 registered; v3 live."""
    with Lastgood(home=home, actor="setup") as lg:
        for path in dirs:
            lg.register(MODEL, path)
        lg.deploy(MODEL, 3, env="production", reason="release 3")


def served(metrics: str, version: int) -> float:
    """Requests the replica's live slot of `version` answered, from its /metrics."""
    pattern = r'^lastgood_requests_total\{model="city",version="VERSION"\} (\S+)$'
    found = re.search(pattern.replace("VERSION", str(version)), metrics, re.M)
    return float(found.group(1)) if found else 0.0


def errors(metrics: str) -> float:
    return sum(float(v) for v in re.findall(r'^lastgood_errors_total\{[^}]*\} (\S+)$',
                                            metrics, re.M))


def wait_kept(url: str, count: int, timeout: float = 60) -> None:
    """Until the replica's reservoir holds `count` requests answered by the live version."""
    line = f'lastgood_replay_reservoir_requests{{env="production",model="city"}} {count:.1f}'
    assert wait_for(lambda: line in httpx.get(f"{url}/metrics", timeout=5).text,
                    timeout_s=timeout, poll_s=0.3), f"the reservoir never held {count} requests"


def live_version(cli: Cli) -> int:
    """The registry's live version, once the replica reports serving it (or after 30 s)."""
    seen: list[int] = []

    def replicas_serve_it() -> bool:
        status = cli("status", MODEL, *ENV, "--json").json()
        seen.append(int(status["desired"]["version"]))
        return all(r["version"] == seen[-1] for r in status["replicas"])

    wait_for(replicas_serve_it, timeout_s=30, poll_s=0.3)
    return seen[-1]


@pytest.mark.slow
def test_a_deploy_is_replayed_on_todays_traffic_before_it_takes_any(
        tmp_path: Path, city_dirs: list[Path]) -> None:
    cli = Cli(home=tmp_path / "home")
    setup_live_v3(cli.home, city_dirs)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(cli, port)
    try:
        send_traffic(url, 40)
        wait_kept(url, 40)

        # v2 cannot encode marseille: refused with the example, before any request reaches it.
        refused = cli("deploy", MODEL, "2", *ENV, "--reason", "release 2")
        assert_clean_error(refused, 2, "deploy of city@2 to production refused",
                           "replay: v2 fails on 10 of 40 recent requests: city='marseille'",
                           "unknown categor", "live v3 answers them", "--force")
        assert live_version(cli) == 3
        send_traffic(url, 8)  # still answered, by v3
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert served(metrics, 2) == 0
        assert served(metrics, 3) == 48
        assert errors(metrics) == 0
        events = [json.loads(line) for line in cli("audit", "export").out.splitlines()]
        [refusal] = [e for e in events if e["action"] == "operation.refused"]
        [cand] = refusal["evidence"]["candidates"]
        [check] = [c for c in cand["checks"] if c["name"] == "replay"]
        assert check["status"] == "fail"
        assert check["evidence"]["failed"] == 10
        assert check["evidence"]["replayed"] == 40
        assert check["evidence"]["proofs"][0]["example"] == "city='marseille'"
        assert refusal["evidence"]["shadow"]["replayed"]  # the replica replayed it
        # the archive of the refused deploy keeps the requests it failed on
        archive = refusal["evidence"]["archive"]
        shown = cli("archive", "show", archive, "--json")
        assert shown.code == 0, shown.err
        assert "replay_failures.json" in shown.out

        # The dry run shows the same replay and moves nothing.
        wait_kept(url, 48)
        dry = cli("deploy", MODEL, "2", *ENV, "--dry-run")
        assert dry.code == 0, dry.err
        # 12 of 48: two of the eight requests sent since came from marseille
        assert "replay v2: v2 fails on 12 of 48 recent requests: city='marseille'" in dry.out, \
            dry.out
        assert "refused: replay: v2 fails on 12 of 48" in dry.out
        assert "dry run: would refuse city v2" in dry.out
        dry = cli("deploy", MODEL, "1", *ENV, "--dry-run")
        assert dry.code == 0, dry.err
        assert "replay v1: v1 answered all 48 recent requests; v1 agrees with live v3 on" \
            in dry.out
        assert "dry run: would deploy city v1" in dry.out
        assert live_version(cli) == 3

        # A healthy version shows its agreement, then takes the traffic.
        done = cli("deploy", MODEL, "1", *ENV, "--reason", "back to the ignoring encoder")
        assert done.code == 0, done.err
        assert re.search(r"replay v1: v1 answered all 48 recent requests; v1 agrees with live "
                         r"v3 on \d+ % of the last hour's requests", done.out), done.out
        assert "deployed city v1" in done.out
        assert live_version(cli) == 1

        # --force deploys past a failing replay and names what it overrode.
        send_traffic(url, 20)
        wait_kept(url, 68)  # 20 of them answered by v1: only those are replayed now
        forced = cli("deploy", MODEL, "2", *ENV, "--reason", "accepted", "--force", "--json")
        assert forced.code == 0, forced.err
        op = forced.json()
        [check] = [c for c in op["candidates"][0]["checks"] if c["name"] == "replay"]
        assert check["status"] == "warn"
        assert check["summary"].startswith("overridden by --force: v2 fails on 5 of 20 recent "
                                           "requests: city='marseille'")
        assert check["evidence"]["overridden"] is True
        assert live_version(cli) == 2
    finally:
        stop(server)


def test_deploy_dry_run_of_an_unknown_version_is_one_line(tmp_path: Path,
                                                          city_dirs: list[Path]) -> None:
    cli = Cli(home=tmp_path / "home")
    setup_live_v3(cli.home, city_dirs)
    assert_clean_error(cli("deploy", MODEL, "9", *ENV, "--dry-run"), 2,
                       "model 'city' has no version 9")


def test_an_unusable_replay_archive_setting_is_refused_at_start(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    assert_clean_error(cli("serve", *ENV, "--replay-archive", "maybe"), 2,
                       "--replay-archive 'maybe' is neither on nor off")
