"""`lastgood watch` and `lastgood policy check` as a user types them."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.helpers_models import IRIS_SCHEMA, train_iris_skops
from tests.net import free_port, wait_for

GOOD = """\
model: iris
env: production
mode: pause
bake_window: 5m
signals:
  error_rate: {weight: 2}
  latency_p99: {relative: 0.3}
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key in [k for k in __import__("os").environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    return Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})


def closed_port() -> int:
    return free_port()  # nothing listens on it


def deployed(cli: Cli, tmp_path: Path) -> None:
    with Lastgood(home=cli.home, actor="setup") as lg:
        lg.register("iris", train_iris_skops(tmp_path / "iris.skops"), schema=IRIS_SCHEMA)
        lg.deploy("iris", 1, env="production", reason="release")


def test_policy_check_prints_the_policy_and_its_alpha_split(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD, encoding="utf-8")
    shown = cli("policy", "check", str(path), "--json")
    assert shown.code == 0, shown.err
    [policy] = shown.json()
    assert policy["mode"] == "pause"
    assert [s["alpha"] for s in policy["signals"]] == pytest.approx([0.05 * 2 / 3, 0.05 / 3])
    assert "ok: 1 policies" in cli("policy", "check", str(path)).out


def test_a_bad_policy_is_refused_with_the_line_and_the_fix(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD.replace("weight: 2", "wieght: 2"), encoding="utf-8")
    assert_clean_error(cli("policy", "check", str(path)), 2, f"{path}:6", "did you mean 'weight'")
    path.write_text(GOOD + "  accuracy: {}\n", encoding="utf-8")
    assert_clean_error(cli("policy", "check", str(path), "--source", "prometheus"), 2,
                       "accuracy", "has no source")
    assert_clean_error(cli("watch", "--env", "production", "--policy", str(path), "--once",
                           "--source", "prometheus", "--prometheus-url", "http://127.0.0.1:1"),
                       2, "has no source")


def test_watch_once_on_sources_that_are_down_is_inconclusive(cli: Cli, tmp_path: Path) -> None:
    deployed(cli, tmp_path)
    port = closed_port()
    for args, why in ((("--gateway", f"http://127.0.0.1:{port}"), "cannot reach"),
                      (("--source", "prometheus", "--prometheus-url",
                        f"http://127.0.0.1:{port}"), "unreachable")):
        seen = cli("watch", "--env", "production", "--once", "--json", *args)
        assert seen.code == 0, seen.err
        [obs] = seen.json()
        assert obs["version"] == 1
        assert obs["assessment"]["verdict"] == "INCONCLUSIVE"
        assert why in obs["assessment"]["reason"]
        assert obs["decision"] == "record"
    assert cli("status", "iris", "--env", "production", "--json").json()["desired"]["version"] == 1


def test_watch_needs_the_local_registry(cli: Cli) -> None:
    remote = {"LASTGOOD_URL": "http://127.0.0.1:1"}
    assert_clean_error(cli("watch", "--env", "production", "--once", env=remote), 2,
                       "LASTGOOD_URL")


def test_policy_show_names_the_default_and_the_files(cli: Cli, tmp_path: Path) -> None:
    default = cli("policy", "show", "iris", "--env", "production", "--json")
    assert default.code == 0, default.err
    view = default.json()
    assert view["from_file"] is False
    assert view["alpha"] == 0.1
    assert {s["name"]: s["alpha"] for s in view["signals"]}["error_rate"] == pytest.approx(0.1 / 3)
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD, encoding="utf-8")
    given = cli("policy", "show", "iris", "--env", "production", "--policy", str(path), "--json")
    assert given.json()["from_file"] is True
    assert given.json()["mode"] == "pause"


WATCH_POLICY = """\
model: iris
env: production
bake_window: 2s
signals:
  error_rate: {min_samples: 20, weight: 2}
  latency_p99: {min_samples: 20, relative: 1.0}
"""


@pytest.mark.slow
def test_serve_with_the_watch_inside_records_and_verifies(tmp_path: Path,
                                                          models: list[Path]) -> None:
    from tests.e2e.test_cli_rollback import fill_history
    from tests.e2e.test_cli_serve import wait_ready
    from tests.helpers_models import iris_records

    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)  # v3 live, never verified
    policy = tmp_path / "policy.yaml"
    policy.write_text(WATCH_POLICY, encoding="utf-8")
    assert_clean_error(cli("serve", "--env", "production", "--watch", "--workers", "2"), 2,
                       "single serving process")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = cli.start("serve", "--env", "production", "--port", str(port), "--watch",
                       "--policy", str(policy))
    try:
        wait_ready(url)
        body = {"records": iris_records(1)}
        events: list[dict[str, object]] = []
        verified: list[dict[str, object]] = []

        def verified_by_the_watch() -> bool:
            for _ in range(10):
                httpx.post(f"{url}/v1/models/iris/predict", json=body, timeout=10)
            events[:] = cli("events", "--model", "iris", "--json").json()
            verified[:] = [e for e in events if e["action"] == "deployment.verified"
                           and e["actor"] == "lastgood-watch"]
            return bool(verified)

        wait_for(verified_by_the_watch, timeout_s=60, poll_s=0.3)
        actions = [e["action"] for e in events]
        assert verified, actions
        assert verified[0]["subject"] == "v3"
        # v2 was verified by hand with error_rate=0.01: v3 is judged against it from the start
        assert "stated by setup (error_rate=0.01)" in str(verified[0]["reason"])
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert "Traceback" not in err
