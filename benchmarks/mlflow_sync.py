"""Sync from a real MLflow Model Registry, and "what was live at T": lastgood vs MlflowClient alone.

    .venv/bin/python benchmarks/mlflow_sync.py                # 1,000 MLflow versions, 40 deploys
    .venv/bin/python benchmarks/mlflow_sync.py --quick        # 100 versions, 10 deploys
    .venv/bin/python benchmarks/mlflow_sync.py --smoke-test   # golden outputs recorded too

Without --smoke-test the smoke test is off (LASTGOOD_SMOKE_TEST=off), so the sync measures
download, hashing, inspection and registration; with it, each version's input example is run
in a loader process to record its golden outputs, as `lastgood sync mlflow` does by default:
one process for the whole sync, each version loaded from its own files fetched (and
digest-checked) from lastgood's store, while the next versions are downloaded and stored.

A real `mlflow server` (SQLite backend, local artifact root) is started on a free loopback port.
One model is trained and logged with `mlflow.sklearn.log_model` (skops) and registered; the
other versions are made in bulk with `MlflowClient.create_model_version` on the same logged
model's source (logging 1,000 models through the server takes ~15 s each on this machine; a
registered version per call costs milliseconds and is what `sync` sees as 1,000 versions).

1. `lastgood sync mlflow` (the service the command calls, with a fresh SQLite registry):
   every version downloaded through MLflow's client, hashed, inspected and registered (and,
   with --smoke-test, its golden outputs recorded).
2. A history of deploys (each verified, every third rolled back) in lastgood with the
   `mirror` mode on, so MLflow carries lastgood's tags. Then for random times T, "which
   version was live in production at T, and which was the last verified one":
   - lastgood: `history` + the domain's `live_at` / `verified_by` (its own deployment table);
   - MlflowClient alone: search every version of the model (pages of 1,000) and read the
     `lastgood.production.live` / `.verified` tags — the best a user can do, since MLflow
     keeps no history of alias moves; a version deployed twice keeps only its last period, so
     the answer can also be wrong (counted).

Targets: sync >= 20 versions/s, with or without --smoke-test; lastgood's answer p95 <= 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import p50, print_table, quantile
from lastgood.bootstrap import open_services
from lastgood.config import load_settings
from lastgood.domain.deployments import live_at, verified_by
from lastgood.services.container import Services

MODEL = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mlflow(root: Path, port: int) -> subprocess.Popen[bytes]:
    mlflow = Path(sys.executable).with_name("mlflow")
    log = (root / "server.log").open("ab")
    proc = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("mlflow server did not start: " + (root / "server.log").read_text()[-800:])


def make_versions(url: str, count: int) -> float:
    """One logged model, then `count` registered versions of it; returns seconds taken."""
    import mlflow
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).random((40, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    mlflow.set_tracking_uri(url)
    start = time.perf_counter()
    with mlflow.start_run() as run, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own type-hint warnings while logging
        mlflow.log_metric("auc", 0.9)
        info: Any = mlflow.sklearn.log_model(model, name="model", serialization_format="skops",
                                             registered_model_name=MODEL, input_example=x[:2])
    client = MlflowClient(url)
    first = client.get_model_version(MODEL, str(info.registered_model_version))
    model_id = first.model_id or first.source.removeprefix("models:/")  # MLflow 3 logged model
    for _ in range(count - 1):
        client.create_model_version(MODEL, first.source, run_id=run.info.run_id,
                                    model_id=model_id)
    return time.perf_counter() - start


def open_lastgood(home: Path, url: str, *, smoke_test: bool) -> Services:
    settings = replace(load_settings({"LASTGOOD_HOME": str(home), "MLFLOW_TRACKING_URI": url}),
                       smoke_test=smoke_test)
    return open_services(settings)


def bench_sync(services: Services) -> tuple[int, float]:
    start = time.perf_counter()
    pending = services.mlflow_sync.pending([MODEL])
    report = services.mlflow_sync.sync(pending, actor="bench")
    elapsed = time.perf_counter() - start
    if report.failed:
        raise SystemExit(f"sync failed: {report.failed[0].detail}")
    return report.imported, elapsed


def build_history(services: Services, deploys: int) -> list[datetime]:
    """Deploy versions 1..deploys in turn, verify each, roll back every third; returns the
    moments between switches (where the questions are asked)."""
    deps = services.deployments
    services.deployments.configure("production", changes={"mlflow_mode": "mirror"}, actor="b")
    moments = []
    for n in range(1, deploys + 1):
        deps.deploy(MODEL, n, env="production", reason="bench", actor="bench")
        deps.verify(MODEL, env="production", baseline={"accuracy": 0.9}, reason="bench",
                    actor="bench")
        moments.append(datetime.now(UTC))
        if n % 3 == 0:
            deps.rollback(MODEL, env="production", reason="bench", actor="bench")
            moments.append(datetime.now(UTC))
    # versions already live once are deployed again: MLflow's tags keep only the last period
    for n in (2, 4):
        deps.deploy(MODEL, n, env="production", reason="again", actor="bench")
        moments.append(datetime.now(UTC))
    return moments


def lastgood_answer(services: Services, at: datetime) -> tuple[int | None, int | None]:
    history = services.deployments.history(MODEL, env="production")
    live, verified = live_at(history, at), verified_by(history, at)
    return (live.version if live else None, verified.version if verified else None)


def mlflow_answer(client: Any, at: datetime) -> tuple[int | None, int | None]:
    """From MLflow alone: every version's tags, the latest `live.since` <= T (lastgood numbers
    are in the tag so both answers compare)."""
    live: tuple[datetime, int] | None = None
    verified: tuple[datetime, int] | None = None
    token = None
    while True:
        page = client.search_model_versions(f"name = '{MODEL}'", max_results=1000,
                                            page_token=token)
        for mv in page:
            tags = mv.tags or {}
            if "lastgood.production.live" not in tags:
                continue
            info = json.loads(tags["lastgood.production.live"])
            since = datetime.fromisoformat(info["since"])
            if since > at:
                continue  # live (again) only after T, as far as the tags can tell
            if live is None or since > live[0]:
                live = (since, int(info["lastgood_version"]))
            ver = tags.get("lastgood.production.verified")
            if ver and datetime.fromisoformat(json.loads(ver)["at"]) <= at and (
                    verified is None or since > verified[0]):
                verified = (since, int(info["lastgood_version"]))
        token = page.token
        if not token:
            break
    return (live[1] if live else None, verified[1] if verified else None)


def ask(fn: Any, moments: list[datetime], questions: int) -> tuple[list[float], list[Any]]:
    rng = random.Random(7)
    times, answers = [], []
    for _ in range(questions):
        at = rng.choice(moments) - timedelta(milliseconds=1)
        start = time.perf_counter()
        answers.append(fn(at))
        times.append((time.perf_counter() - start) * 1000)
    return times, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--deploys", type=int, default=40)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke-test", action="store_true",
                        help="record golden outputs as a default sync does")
    args = parser.parse_args()
    if args.quick:
        args.versions, args.deploys, args.questions = 100, 10, 50
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="lastgood-bench-mlflow-") as tmp:
        root = Path(tmp)
        port = free_port()
        proc = start_mlflow(root, port)
        url = f"http://127.0.0.1:{port}"
        try:
            made = make_versions(url, args.versions)
            services = open_lastgood(root / "home", url, smoke_test=args.smoke_test)
            imported, synced = bench_sync(services)
            moments = build_history(services, args.deploys)
            services.mlflow_mirror.catch_up()
            lg_ms, lg = ask(lambda at: lastgood_answer(services, at), moments, args.questions)
            client = MlflowClient(url)
            ml_ms, ml = ask(lambda at: mlflow_answer(client, at), moments, args.questions)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    rate = imported / synced
    print_table(f"MLflow sync ({args.versions} versions made in {made:.1f}s in bulk)",
                ["what", "versions", "total s", "ms/version", "versions/s"],
                [("lastgood sync mlflow" + (" (golden outputs recorded)" if args.smoke_test
                                           else " (smoke test off)"), imported, f"{synced:.2f}",
                  f"{synced * 1000 / imported:.1f}", f"{rate:.1f}")])
    wrong = sum(a != b for a, b in zip(lg, ml, strict=True))
    print_table(f"'which version was live at T, and the last verified one' "
                f"({args.questions} questions, {args.deploys} deploys)",
                ["answered by", "p50 ms", "p95 ms", "answers differing from lastgood"],
                [("lastgood (its deployment history)", f"{p50(lg_ms):.2f}",
                  f"{quantile(lg_ms, 0.95):.2f}", "—"),
                 ("MlflowClient alone (search + tags)", f"{p50(ml_ms):.2f}",
                  f"{quantile(ml_ms, 0.95):.2f}", f"{wrong}/{args.questions}")])
    ratio = quantile(ml_ms, 0.95) / max(quantile(lg_ms, 0.95), 1e-9)
    print(f"\nMlflowClient p95 / lastgood p95: {ratio:.1f}x")
    checks = [(f"sync >= 20 versions/s ({rate:.1f})", rate >= 20),
              (f"lastgood answer p95 <= 10 ms ({quantile(lg_ms, 0.95):.2f})",
               quantile(lg_ms, 0.95) <= 10)]
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
