"""`lastgood watch --env E` with no flags finds the replicas that report to the registry, and of
several `serve --watch` replicas exactly one watch acts."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_serve import wait_ready
from tests.helpers_models import IRIS_SCHEMA, iris_records, train_iris_skops
from tests.net import free_port, wait_for


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        lg.register("iris", train_iris_skops(tmp_path / "iris.skops"), schema=IRIS_SCHEMA)
        lg.deploy("iris", 1, env="production", reason="release")
    return cli


def replica(cli: Cli, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    server = cli.start("serve", "--env", "production", "--port", str(port), *extra)
    return server, f"http://127.0.0.1:{port}"


def predict(url: str, n: int) -> None:
    for _ in range(n):
        httpx.post(f"{url}/v1/models/iris/predict", json={"records": iris_records(1)}, timeout=10)


def error_signal(cli: Cli) -> tuple[dict[str, Any], str]:
    """The error-rate evidence and the reason of one `watch --once` with no flags."""
    seen = cli("watch", "--env", "production", "--once", "--json")
    assert seen.code == 0, seen.err
    [obs] = seen.json()
    signals = {s["signal"]: s for s in obs["assessment"]["signals"]}
    return signals["error_rate"], obs["assessment"]["reason"]


def stop(*servers: subprocess.Popen[str]) -> list[str]:
    for server in servers:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
    return [server.communicate(timeout=30)[1] for server in servers]


@pytest.mark.slow
def test_watch_with_no_flags_reads_every_replica_and_leaves_out_a_dead_one(cli: Cli) -> None:
    assert_clean_error(cli("verify", "iris", "--env", "production", "--metric", "accuracy=1.7",
                           "--reason", "by hand"), 2, "accuracy=1.7", "between 0 and 1")
    verified = cli("verify", "iris", "--env", "production", "--metric", "error_rate=0.01",
                   "--metric", "accuracy=0.95", "--reason", "checked by hand")
    assert verified.code == 0, verified.err
    first, url1 = replica(cli)
    second: subprocess.Popen[str] | None = None
    try:
        wait_ready(url1)
        predict(url1, 7)
        errors, reason = error_signal(cli)
        assert errors["samples"] == 7, reason  # found without --gateway
        second, url2 = replica(cli)  # a replica started later
        wait_ready(url2)
        predict(url2, 5)
        errors, reason = error_signal(cli)
        assert errors["samples"] == 12, reason
        first.send_signal(signal.SIGKILL)  # killed without a word: its report stays a while
        first.wait(10)
        errors, reason = error_signal(cli)
        assert errors["samples"] == 5, reason
        assert f"replica {url1}: INCONCLUSIVE: cannot reach" in reason
        assert url2 not in reason
        second.send_signal(signal.SIGTERM)  # a clean stop reports "stopped": dropped at once
        second.wait(30)
        errors, reason = error_signal(cli)
        assert url1 in reason  # still reported, not answering
        assert url2 not in reason  # stopped: not read any more
    finally:
        errs = stop(first, *([second] if second else []))
    assert not any("Traceback" in e for e in errs), errs


def lines_of(err: str, env: str = "production") -> list[str]:
    """What a replica's watch said about the lease, each line once."""
    said = [ln.partition("lastgood.watch: ")[2] for ln in err.splitlines()
            if f"watch of {env}" in ln]
    return list(dict.fromkeys(said))


class Said:
    """A running process's standard error, read line by line as it comes (so a test can wait
    for what the process says instead of sleeping)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        stream = self._stream = proc.stderr
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(
            stream.readline, "")), daemon=True)
        self._thread.start()

    def watch_lines(self) -> list[str]:
        return lines_of("".join(self.lines))

    def finished(self) -> str:
        """Everything it said, once it exited."""
        self._thread.join(30)
        self._stream.close()
        return "".join(self.lines)


def says(said: Said, words: str) -> Callable[[], bool]:
    return lambda: any(words in line for line in said.watch_lines())


@pytest.mark.slow
def test_of_two_serve_watch_replicas_one_acts_and_the_other_takes_over(cli: Cli) -> None:
    first, url1 = replica(cli, "--watch")
    heard1 = Said(first)
    second: subprocess.Popen[str] | None = None
    try:
        wait_ready(url1)
        assert wait_for(says(heard1, "acting"), timeout_s=60)  # took the lease at its first look
        second, url2 = replica(cli, "--watch")
        heard2 = Said(second)
        wait_ready(url2)
        assert wait_for(says(heard2, "standing by"), timeout_s=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # the lease's holder is dead on this host: taken over at the next look
        assert wait_for(says(heard2, "acting"), timeout_s=60)
    finally:
        for server in (first, *([second] if second else [])):
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            server.wait(30)  # its standard error is read by its `Said`
            if server.stdout is not None:
                server.stdout.close()
    err1 = heard1.finished()
    said_first = lines_of(err1)
    assert said_first, err1
    assert "acting" in said_first[0], err1
    err2 = heard2.finished()
    said = lines_of(err2)
    assert len(said) == 2, err2
    assert "standing by" in said[0]
    assert "acting" in said[1]
    assert "Traceback" not in err2
