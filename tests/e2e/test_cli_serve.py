"""`lastgood serve` as a user runs it: a replica that follows deploys and rollbacks, and a
rollback that completes only once the replica reports the target."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli
from tests.e2e.test_cli_rollback import fill_history
from tests.helpers_models import iris_records
from tests.net import free_port, wait_for


def wait_ready(url: str, timeout: float = 90) -> None:
    assert wait_for(lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200,
                    timeout_s=timeout, poll_s=0.3), "the server never became ready"


@pytest.mark.slow
def test_serve_follows_rollback_and_confirms_switch(tmp_path: Path,
                                                    models: list[Path]) -> None:
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = cli.start("serve", "--env", "production", "--port", str(port))
    try:
        wait_ready(url)
        body = {"records": iris_records(2)}
        before = httpx.post(f"{url}/v1/models/iris/predict", json=body, timeout=10)
        assert before.headers["x-model-version"] == "3"
        bad = httpx.post(f"{url}/v1/models/iris/predict", json={"records": [{"x": 1}]},
                         timeout=10)
        assert bad.status_code == 422
        done = cli("rollback", "iris", "--env", "production", "--reason", "errors",
                   "--yes", "--json")
        assert done.code == 0, done.err
        after = httpx.post(f"{url}/v1/models/iris/predict", json=body, timeout=10)
        assert after.headers["x-model-version"] == "2"
        events = cli("events", "--model", "iris", "--json").json()
        confirmed = [e for e in events if e["action"] == "switch.confirmed"][-1]
        assert confirmed["evidence"]["replicas"] == [f"{socket.gethostname()}:{port}"]
        replicas = cli("status", "iris", "--env", "production", "--json").json()["replicas"]
        assert [r["version"] for r in replicas] == [2]
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
