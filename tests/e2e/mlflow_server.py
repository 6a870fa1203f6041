"""A real `mlflow server` on loopback (SQLite backend, local artifact root) for the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.net import free_port, wait_for


@dataclass
class MlflowServer:
    """One tracking server; `stop()` and `start()` keep its port, database and artifacts."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        mlflow = Path(sys.executable).with_name("mlflow")
        # webhooks to lastgood on loopback over http: MLflow allows only public https by
        # default, and caches the webhook list for 60 s (a new webhook would wait that long)
        env = os.environ | {"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
                            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                            "MLFLOW_WEBHOOK_CACHE_TTL": "1"}
        log = self.log = (self.root / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--default-artifact-root", str(self.root / "artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        up = wait_for(lambda: httpx.get(f"{self.url}/health", timeout=2).status_code == 200,
                      timeout_s=90, poll_s=0.3)
        assert up, (self.root / "server.log").read_text()[-2000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None
        wait_for(lambda: _refused(self.url), timeout_s=10)


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=1)
    except httpx.TransportError:
        return True
    return False


def log_model(url: str, name: str, *, seed: int, metric: float) -> tuple[str, str]:
    """Train a small classifier, log it with mlflow.sklearn (skops) and register it in MLflow.
    Returns (run id, MLflow version)."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.random((40, 3))
    y = (x[:, seed % 3] > 0.5).astype(int)
    model = LogisticRegression().fit(x, y)
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("lastgood-tests")
    with mlflow.start_run() as run, warnings.catch_warnings():
        # MLflow warns about its own type-hint inference while logging; not lastgood's concern
        warnings.simplefilter("ignore")
        mlflow.log_metric("auc", metric)
        mlflow.set_tag("team", "fraud")
        info: Any = mlflow.sklearn.log_model(model, name="model", serialization_format="skops",
                                             registered_model_name=name,
                                             input_example=x[:2])
    return run.info.run_id, str(info.registered_model_version)


def wait_until(predicate: Any, timeout_s: float = 30.0) -> bool:
    return wait_for(predicate, timeout_s=timeout_s, poll_s=0.2)
