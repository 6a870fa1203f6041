"""The watch right the first time, as a user runs it: `watch --once` judges what the replicas
have, and a version verified by hand with only an accuracy stated guards the next deploy from
its first labelled request."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli
from tests.e2e.test_cli_serve import wait_ready
from tests.helpers_models import IRIS_COLUMNS, IRIS_SCHEMA, iris, train_iris, train_iris_skops
from tests.net import free_port


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key in [k for k in __import__("os").environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    return Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})


def wrong_iris(path: Path) -> Path:
    """An iris classifier trained on shifted labels: it answers, and answers wrong."""
    features, labels = iris()
    model = train_iris()
    model.fit(features, (labels + 1) % 3)
    return train_iris_skops(path, model=model)


def labelled_traffic(url: str, count: int) -> None:
    """`count` requests, each followed by its true label as feedback."""
    features, labels = iris()
    for i in range(count):
        row = features[i % len(features)]
        record = dict(zip(IRIS_COLUMNS, map(float, row), strict=True))
        answer = httpx.post(f"{url}/v1/models/iris/predict", json={"records": [record]},
                            timeout=10)
        assert answer.status_code == 200, answer.text
        httpx.post(f"{url}/v1/models/iris/feedback", timeout=10, json={
            "request_id": answer.json()["request_id"], "label": int(labels[i % len(labels)])})


def start_serving(cli: Cli, *extra: str) -> tuple[str, subprocess.Popen[str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = cli.start("serve", "--env", "production", "--port", str(port), *extra)
    wait_ready(url)
    return url, server


@pytest.mark.slow
def test_watch_once_judges_what_the_replica_has(cli: Cli, tmp_path: Path) -> None:
    """A version rolled back to counted requests before its deployment began: the first look
    judges them all (it used to be INCONCLUSIVE, "window starts in the future")."""
    with Lastgood(home=cli.home, actor="setup") as lg:
        lg.register("iris", train_iris_skops(tmp_path / "good.skops"), schema=IRIS_SCHEMA)
        lg.register("iris", wrong_iris(tmp_path / "other.skops"), schema=IRIS_SCHEMA)
        lg.deploy("iris", 1, env="production", reason="release")
        lg.verify("iris", env="production", baseline={"error_rate": 0.01}, reason="by hand")
    url, server = start_serving(cli)
    try:
        labelled_traffic(url, 60)
        assert cli("deploy", "iris", "2", "--env", "production", "--reason", "r2").code == 0
        back = cli("rollback", "iris", "--env", "production", "--reason", "test", "--yes")
        assert back.code == 0, back.err
        labelled_traffic(url, 60)
        seen = cli("watch", "--env", "production", "--once", "--json", "--gateway", url)
        assert seen.code == 0, seen.err
        [obs] = seen.json()
        assert obs["version"] == 1
        assessment = obs["assessment"]
        assert "future" not in assessment["reason"], assessment["reason"]
        errors = {s["signal"]: s for s in assessment["signals"]}["error_rate"]
        assert errors["samples"] >= 120, errors  # what the replica served
        assert "stated by setup" in errors["explanation"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


@pytest.mark.slow
def test_a_stated_accuracy_alone_rolls_back_a_bad_deploy(cli: Cli, tmp_path: Path) -> None:
    with Lastgood(home=cli.home, actor="setup") as lg:
        lg.register("iris", train_iris_skops(tmp_path / "good.skops"), schema=IRIS_SCHEMA,
                    tag="good")
        lg.register("iris", wrong_iris(tmp_path / "bad.skops"), schema=IRIS_SCHEMA, tag="bad")
    assert cli("deploy", "iris", "good", "--env", "production", "--reason", "r1").code == 0
    hand = cli("verify", "iris", "--env", "production", "--metric", "accuracy=0.97",
               "--reason", "checked by hand")
    assert hand.code == 0, hand.err
    assert cli("deploy", "iris", "bad", "--env", "production", "--reason", "r2").code == 0
    url, server = start_serving(cli, "--watch")  # the default policy and settings
    try:
        deadline = time.monotonic() + 30  # the promise, from the first request
        live = 2
        while live == 2 and time.monotonic() < deadline:
            labelled_traffic(url, 5)
            live = cli("status", "iris", "--env", "production", "--json").json()[
                "desired"]["version"]
        assert live == 1, "the bad deploy was not rolled back within 30 s"
        events = cli("events", "--model", "iris", "--json").json()
        planned = [e for e in events if e["action"] == "operation.planned"
                   and e["actor"] == "lastgood-watch"]
        assert planned, [(e["action"], e["actor"]) for e in events]
        assert "accuracy" in str(planned[-1]["reason"]), planned[-1]
        assert "stated by oncall" in str(planned[-1]["reason"]), planned[-1]
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=120)
    assert "Traceback" not in err
