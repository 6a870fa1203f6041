"""The README's CI step, command by command, with its exit codes: deploy, wait for the watch's
verdict, roll back when it is a regression."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_serve import wait_ready
from tests.e2e.test_cli_watch_first_look import labelled_traffic, wrong_iris
from tests.helpers_models import IRIS_SCHEMA, train_iris_skops
from tests.net import free_port, stop

POLICY = """\
model: iris
env: production
mode: pause
bake_window: 3s
signals:
  error_rate: {min_samples: 20}
  accuracy: {min_samples: 20}
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LASTGOOD_SMOKE_TEST", "off")
    return Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})


def waited(cli: Cli, url: str, *args: str) -> tuple[int, str, str]:
    """`lastgood wait …` run in the background while labelled traffic flows."""
    proc = cli.start("wait", "iris", "--env", "production", "--interval", "0.5", *args)
    while proc.poll() is None:
        labelled_traffic(url, 5)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_wait_without_a_watch_gives_up_with_exit_1(cli: Cli, tmp_path: Path) -> None:
    with Lastgood(home=cli.home, actor="setup") as lg:
        lg.register("iris", train_iris_skops(tmp_path / "good.skops"), schema=IRIS_SCHEMA)
        lg.deploy("iris", 1, env="production", reason="release")
    assert_clean_error(cli("wait", "iris", "--env", "production", "--timeout", "1"), 1,
                       "no verdict", "is a watch running")
    assert_clean_error(cli("wait", "nope", "--env", "production"), 2, "unknown model")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_deploy_wait_and_roll_back_on_a_regression(cli: Cli, tmp_path: Path) -> None:
    with Lastgood(home=cli.home, actor="setup") as lg:
        lg.register("iris", train_iris_skops(tmp_path / "good.skops"), schema=IRIS_SCHEMA,
                    tag="good")
        lg.register("iris", wrong_iris(tmp_path / "bad.skops"), schema=IRIS_SCHEMA, tag="bad")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    assert cli("deploy", "iris", "good", "--env", "production", "--reason", "ci 1").code == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = cli.start("serve", "--env", "production", "--port", str(port), "--watch",
                       "--policy", str(policy))
    try:
        wait_ready(url)
        code, out, err = waited(cli, url, "--timeout", "300")
        assert code == 0, (out, err)
        assert "verified iris v1" in out
        assert cli("deploy", "iris", "bad", "--env", "production", "--reason", "ci 2").code == 0
        code, out, err = waited(cli, url, "--timeout", "300")
        assert code == 9, (out, err)  # Regressed: the pipeline rolls back
        assert "accuracy" in err
        back = cli("rollback", "iris", "--env", "production", "--reason", "ci: regression",
                   "--yes")
        assert back.code == 0, back.err
        assert cli("status", "iris", "--env", "production", "--json").json()[
            "desired"]["version"] == 1
    finally:
        stop(server, timeout_s=120)
