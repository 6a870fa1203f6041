"""Errors are blamed on the version only when the way back does better, on a real
`lastgood serve --watch` with MLflow-saved sklearn pipelines (OneHotEncoder(handle_unknown=
"error"): an unseen category raises in the model, after every input check passed).

v2 is verified and live, v1 (verified before it) the warm standby. A client sends 20 % requests
with a colour no version has seen: both raise on them, so the watch holds the rollback back and
says why, and nothing is rolled back or quarantined. Then v3, which raises on a colour good
traffic carries, is deployed: v2 answers those requests, so the errors are v3's and it is still
rolled back.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli
from tests.e2e.test_cli_serve import wait_ready
from tests.net import free_port, wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*Any type hint is inferred:UserWarning")]
MODEL, ENV = "pricing", "production"
POLICY = f"""\
model: {MODEL}
env: {ENV}
mode: auto
bake_window: 1h
signals:
  error_rate: {{min_samples: 20}}
"""
COLOURS = ("red", "green", "blue")


def pipeline_dir(folder: Path, name: str, colours: Sequence[str], seed: int) -> Path:
    """A colour + size classifier whose encoder raises on a colour it was not fitted on,
    saved by MLflow's own save_model with its signature."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"colour": rng.choice(list(colours), 300),
                          "size": rng.normal(size=300)})
    labels = (frame["size"] > 0).astype(int)
    encode = ColumnTransformer([("colour", OneHotEncoder(handle_unknown="error"), ["colour"])],
                               remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(frame, labels)
    target = folder / name
    mlflow.sklearn.save_model(model, target,
                              signature=infer_signature(frame, model.predict(frame)))
    return target


@dataclass
class WatchedReplica:
    cli: Cli
    url: str
    bad: Path


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WatchedReplica]:
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        for number in (1, 2):
            lg.register(MODEL, pipeline_dir(tmp_path, f"v{number}", COLOURS, number),
                        tag=f"v{number}.0")
            lg.deploy(MODEL, number, env=ENV, reason=f"release {number}")
            lg.verify(MODEL, env=ENV, baseline={"error_rate": 0.01}, reason="baked")
    bad = pipeline_dir(tmp_path, "v3", ("green", "blue"), 3)  # never saw red
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    port = free_port()
    server = cli.start("serve", "--env", ENV, "--port", str(port), "--watch", "--policy",
                       str(policy))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        assert wait_until(lambda: bool(httpx.get(f"{url}/v1/models/{MODEL}",
                                                 timeout=5).json()["standby"]), 60)
        yield WatchedReplica(cli, url, bad)
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
        assert "Traceback" not in err, err[-3000:]


def wait_until(condition: Any, timeout_s: float) -> bool:
    return wait_for(condition, timeout_s=timeout_s, poll_s=0.2)


def send(url: str, count: int, *, unseen_every: int = 5) -> list[int]:
    """`count` requests, every `unseen_every`-th with a colour no version was fitted on."""
    codes = []
    with httpx.Client(timeout=10) as http:
        for i in range(count):
            colour = "purple" if i % unseen_every == 0 else COLOURS[i % 3]
            r = http.post(f"{url}/v1/models/{MODEL}/predict",
                          json={"records": [{"colour": colour, "size": (i % 7) / 3 - 1}]})
            codes.append(r.status_code)
    return codes


def events(cli: Cli, action: str) -> list[dict[str, Any]]:
    found = cli("events", "--model", MODEL, "--json")
    assert found.code == 0, found.err
    return [e for e in found.json() if e["action"] == action]


def live_version(cli: Cli) -> int | None:
    desired = cli("status", MODEL, "--env", ENV, "--json").json()["desired"]
    return int(desired["version"]) if desired else None


def live_stats(url: str) -> dict[int, dict[str, Any]]:
    body = httpx.get(f"{url}/v1/models/{MODEL}/stats", timeout=10).json()
    return {v["version"]: v for v in body["versions"]}


def send_nan(url: str, count: int) -> list[int]:
    """`count` requests, every fifth with a size of NaN (a literal Python's json accepts)."""
    codes = []
    with httpx.Client(timeout=10) as http:
        for i in range(count):
            size = "NaN" if i % 5 == 0 else "0.5"
            r = http.post(f"{url}/v1/models/{MODEL}/predict",
                          content=f'{{"records": [{{"colour": "red", "size": {size}}}]}}')
            codes.append(r.status_code)
    return codes


def rejected(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(f'lastgood_rejected_requests_total{{model="{MODEL}"'))


def test_input_errors_hold_the_rollback_back_and_a_genuine_regression_is_still_rolled_back(
        world: WatchedReplica) -> None:
    # 20 % NaN: refused before the model, never an error the watch could count
    nan_codes = send_nan(world.url, 100)
    assert (nan_codes.count(422), nan_codes.count(200)) == (20, 80)
    assert rejected(world.url) == 20
    assert live_stats(world.url)[2]["errors"] == 0
    codes: list[int] = []

    def held() -> bool:
        codes.extend(send(world.url, 20))
        return bool(events(world.cli, "watch.held_back"))

    assert wait_until(held, 90), events(world.cli, "watch.decision")
    assert codes.count(500) == len(codes) // 5  # exactly the unseen colours failed
    # keep the bad traffic flowing until 40 failures were replayed: still nothing rolled back
    assert wait_until(lambda: bool(send(world.url, 20))
                      and live_stats(world.url)[2]["errors_input"] >= 40, 90)
    stats = live_stats(world.url)[2]
    assert stats["errors_input"] == stats["errors_replayed"]  # v1 failed on every one
    assert stats["replayed_on"] == [1]
    [event] = events(world.cli, "watch.held_back")
    assert event["subject"] == "v2"
    assert "failing requests fail on v1 too: caused by input" in event["reason"]
    assert "rollback held back" in event["reason"]
    assert live_version(world.cli) == 2
    assert world.cli("show", MODEL, "2", "--json").json()["status"] == "active"
    assert not [e for e in events(world.cli, "operation.planned")
                if e["after"]["kind"] == "rollback"]
    assert not events(world.cli, "version.quarantined")
    metrics = httpx.get(f"{world.url}/metrics", timeout=10).text
    assert f'lastgood_errors_input_total{{model="{MODEL}",version="2"}}' in metrics

    # a genuine regression: v3 raises on red, which v2 answers
    with Lastgood(home=world.cli.home, actor="setup") as lg:
        lg.register(MODEL, world.bad, tag="v3.0")
        lg.deploy(MODEL, 3, env=ENV, reason="release 3")

    def rolled_back() -> bool:
        send(world.url, 20)
        return live_version(world.cli) == 2

    assert wait_until(rolled_back, 120), events(world.cli, "watch.decision")
    [rollback] = [e for e in events(world.cli, "operation.planned")
                  if e["after"]["kind"] == "rollback"]
    assert rollback["actor"] == "lastgood-watch"
    assert "error_rate" in rollback["reason"]

    def finished() -> bool:  # the rollback verifies v2 live: it needs traffic to judge
        send(world.url, 20)
        return any(e["seq"] > rollback["seq"] for e in [
            *events(world.cli, "operation.succeeded"), *events(world.cli, "operation.escalated")])

    assert wait_until(finished, 120)
    assert world.cli("show", MODEL, "3", "--json").json()["status"] == "quarantined"
    v3 = live_stats(world.url)[3]
    assert v3["errors_replayed"] > v3["errors_input"]  # v2 answered the red requests
