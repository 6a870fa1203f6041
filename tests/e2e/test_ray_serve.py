"""`lastgood serve --engine ray` on a real local Ray instance: every Ray Serve replica is a
lastgood replica that follows the registry, reports to it, and switches in place.

The application runs as a user starts it (the real command, Ray Serve's proxy on a free loopback
port); the clients are httpx, tritonclient (Open Inference Protocol v2) and MLflow's own scoring
client, all through Ray's proxy.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import numpy as np
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_rollback import fill_history
from tests.helpers_models import IRIS_COLUMNS, iris_records, three_iris_skops
from tests.net import free_port, stop, wait_for

# Found, not imported: this process is only a client (importing Ray here would also change what
# MLflow's client sees when it inspects type hints).
pytestmark = [pytest.mark.slow,
              # MLflow's scoring client warns at import about its own pydantic types
              pytest.mark.filterwarnings("ignore:.*Any type hint is inferred:UserWarning"),
              pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                 reason="Ray Serve is the optional extra lastgood[ray]")]
ENV = ("--env", "production")
RECORDS = iris_records(3)
REPLICAS = 2


@dataclass
class RayServed:
    url: str
    port: int
    cli: Cli
    process: subprocess.Popen[str]

    def ray_replicas(self) -> list[dict[str, Any]]:
        """The Ray replicas the registry holds a live report of."""
        status = self.cli("status", "iris", *ENV, "--json").json()
        return [r for r in status["replicas"]
                if r["replica_id"].startswith("ray:") and r["state"] != "stopped"]

    def all_on(self, version: int, count: int = REPLICAS) -> bool:
        serving = [r for r in self.ray_replicas() if r["state"] == "serving"]
        return len(serving) == count and all(r["version"] == version for r in serving)


@pytest.fixture(scope="module", params=["sqlite", "postgresql+s3"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[dict[str, str]]:
    """The registry and store settings: the embedded default (one node), or PostgreSQL and
    a real S3 protocol (moto's server), as a cluster of several nodes needs."""
    if request.param == "sqlite":
        yield {}
        return
    import psycopg

    from tests.conftest import _admin_dsn
    from tests.contract.test_artifact_store import MOTO_ENV, s3_client, wait_until_answering

    name = f"lg_ray_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H",
                             "127.0.0.1", "-p", str(port)], env={**os.environ, **MOTO_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{endpoint}/moto-api/", moto)
        s3_client(endpoint).create_bucket(Bucket="lastgood-ray")
        yield MOTO_ENV | {"LASTGOOD_DB_URL": _admin_dsn().rsplit("/", 1)[0] + f"/{name}",
                          "LASTGOOD_STORE_URL": "s3://lastgood-ray/artifacts",
                          "LASTGOOD_S3_ENDPOINT_URL": endpoint}
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def ray_served(tmp_path_factory: pytest.TempPathFactory,
               backend: dict[str, str]) -> Iterator[RayServed]:
    """iris v1 and v2 verified, v3 live, served by two Ray replicas behind Ray's proxy."""
    folder = tmp_path_factory.mktemp("ray")
    cli = Cli(home=folder / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off",
                                                "RAY_USAGE_STATS_ENABLED": "0"} | backend)
    with mock.patch.dict(os.environ, backend), \
            Lastgood(home=cli.home, db_url=backend.get("LASTGOOD_DB_URL"),
                     store_url=backend.get("LASTGOOD_STORE_URL"), actor="setup") as lg:
        fill_history(lg, three_iris_skops(folder / "models"), verify_second=True)
    port = free_port()
    process = cli.start("serve", *ENV, "--engine", "ray", "--replicas", str(REPLICAS),
                        "--port", str(port))
    served = RayServed(f"http://127.0.0.1:{port}", port, cli, process)
    try:
        ready = wait_for(lambda: httpx.get(f"{served.url}/readyz", timeout=2).status_code == 200,
                         timeout_s=240, poll_s=0.5)
        assert ready, "Ray Serve's proxy never answered ready"
        assert wait_for(lambda: served.all_on(3), timeout_s=60, poll_s=0.3), \
            served.ray_replicas()
        yield served
    finally:
        stop(process, signum=signal.SIGINT, timeout_s=90)


@dataclass
class Load:
    """Steady requests through Ray's proxy in a thread: every answer's status and version."""

    url: str
    versions: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    last: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = {"records": RECORDS}
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                answer = client.post(f"{self.url}/v1/models/iris/predict", json=body)
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code}: {answer.text[:200]}")
                else:
                    self.last = int(answer.headers["x-model-version"])
                    self.versions[self.last] += 1
                time.sleep(0.01)


@pytest.fixture
def load(ray_served: RayServed) -> Iterator[Load]:
    running = Load(ray_served.url)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        thread.join(30)


def test_a_rollback_switches_every_ray_replica_in_place_under_load(
        ray_served: RayServed, load: Load) -> None:
    before = {r["replica_id"] for r in ray_served.ray_replicas()}
    assert wait_for(lambda: load.versions[3] >= 20, timeout_s=60)
    done = ray_served.cli("rollback", "iris", *ENV, "--reason", "ray drill", "--yes", "--json")
    assert done.code == 0, done.err
    assert done.json()["target_version"] == 2
    assert wait_for(lambda: load.last == 2 and ray_served.all_on(2), timeout_s=30)
    settled = load.versions[2]
    assert wait_for(lambda: load.versions[2] >= settled + 20, timeout_s=60)
    load.stop.set()
    assert load.failures == []
    # the same replicas, switched in place: no restart, no new Ray replica
    assert {r["replica_id"] for r in ray_served.ray_replicas()} == before
    events = ray_served.cli("events", "--model", "iris", "--json").json()
    confirmed = [e for e in events if e["action"] == "switch.confirmed"][-1]
    assert sorted(confirmed["evidence"]["replicas"]) == sorted(before)


def test_each_ray_replica_answers_the_watch_at_its_own_address(ray_served: RayServed) -> None:
    for replica in ray_served.ray_replicas():
        assert replica["url"].startswith("http://127.0.0.1:"), replica
        stats = httpx.get(f"{replica['url']}/v1/models/iris/stats", timeout=5).json()
        assert {v["version"] for v in stats["versions"]} >= {replica["version"]}


def test_tritonclient_and_mlflows_scoring_client_through_rays_proxy(
        ray_served: RayServed) -> None:
    import pandas as pd
    import tritonclient.http as tc
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    native = httpx.post(f"{ray_served.url}/v1/models/iris/predict",
                        json={"records": RECORDS}, timeout=10).json()["predictions"]
    client = tc.InferenceServerClient(url=f"127.0.0.1:{ray_served.port}",
                                      connection_timeout=10, network_timeout=10)
    assert client.is_server_ready()
    inputs = []
    for column in IRIS_COLUMNS:
        tensor = tc.InferInput(column, [len(RECORDS)], "FP64")
        tensor.set_data_from_numpy(np.array([r[column] for r in RECORDS]), binary_data=True)
        inputs.append(tensor)
    answer = client.infer("iris", inputs)
    assert answer.as_numpy(answer.get_response()["outputs"][0]["name"]).tolist() == native
    scoring = ScoringServerClient("127.0.0.1", ray_served.port)
    scoring.ping()
    frame = pd.DataFrame(RECORDS, columns=list(IRIS_COLUMNS))
    predictions = scoring.invoke(frame).get_predictions(predictions_format="ndarray")
    assert predictions.tolist() == native


def _replica_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"ray::ServeReplica:lastgood-production"):
            pids.append(int(entry.name))
    return pids


def test_a_replica_ray_restarts_comes_up_on_the_desired_version(ray_served: RayServed) -> None:
    desired = ray_served.cli("status", "iris", *ENV, "--json").json()["desired"]["version"]
    before = {r["replica_id"] for r in ray_served.ray_replicas()}
    pids = _replica_pids()
    assert len(pids) == REPLICAS, pids
    os.kill(pids[0], signal.SIGKILL)

    def replaced() -> bool:
        serving = [r for r in ray_served.ray_replicas()
                   if r["state"] == "serving" and r["replica_id"] not in before]
        return bool(serving) and all(r["version"] == desired for r in serving)

    assert wait_for(replaced, timeout_s=180, poll_s=0.5), ray_served.ray_replicas()
    assert wait_for(lambda: len(_replica_pids()) == REPLICAS, timeout_s=60)


# -- bad input: one line, before any replica starts ------------------------------------------

def test_ray_options_without_the_ray_engine_are_refused(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    assert_clean_error(cli("serve", *ENV, "--replicas", "3"), 2, "--replicas", "--engine ray")
    assert_clean_error(cli("serve", *ENV, "--engine", "ray", "--workers", "2"), 2,
                       "--workers", "--replicas")
    assert_clean_error(cli("serve", *ENV, "--engine", "ray", "--watch"), 2, "lastgood watch")


def test_a_ray_address_that_does_not_answer_names_it(tmp_path: Path,
                                                     models: list[Path]) -> None:
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)
    port = free_port()
    result = cli("serve", *ENV, "--engine", "ray", "--ray-address", f"127.0.0.1:{port}")
    assert_clean_error(result, 1, f"--ray-address 127.0.0.1:{port}", "does not answer")


def test_ray_autoscaling_adds_replicas_on_the_registrys_current_version(
        tmp_path: Path, models: list[Path]) -> None:
    """`--replicas 1-2`: under load Ray adds a replica; it comes up warm on the version the
    registry says now (v2 after a rollback), not the one the application started on (v3).
    (Two, not three: each Ray Serve replica reserves a CPU by default, and this machine has two.)"""
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off",
                                                  "RAY_USAGE_STATS_ENABLED": "0"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)
    port = free_port()
    process = cli.start("serve", *ENV, "--engine", "ray", "--replicas", "1-2",
                        "--port", str(port))
    served = RayServed(f"http://127.0.0.1:{port}", port, cli, process)
    loads = [Load(served.url) for _ in range(16)]
    threads = [threading.Thread(target=load.run, daemon=True) for load in loads]
    try:
        assert wait_for(lambda: served.all_on(3, count=1), timeout_s=240, poll_s=0.5), \
            served.ray_replicas()
        done = cli("rollback", "iris", *ENV, "--reason", "before scaling", "--yes")
        assert done.code == 0, done.err
        assert wait_for(lambda: served.all_on(2, count=1), timeout_s=30)
        for thread in threads:
            thread.start()
        assert wait_for(lambda: served.all_on(2, count=2), timeout_s=240, poll_s=0.5), \
            served.ray_replicas()
    finally:
        for load in loads:
            load.stop.set()
        for thread in threads:
            thread.join(30)
        stop(process, signum=signal.SIGINT, timeout_s=90)
    assert [f for load in loads for f in load.failures] == []
    assert sum(load.versions[2] for load in loads) > 0
    assert sum(load.versions[3] for load in loads) == 0


def test_a_replica_range_that_is_not_one_is_refused(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    for bad in ("0", "3-1", "two", "1-2000"):
        assert_clean_error(cli("serve", *ENV, "--engine", "ray", "--replicas", bad), 2,
                           f"--replicas {bad!r}")
