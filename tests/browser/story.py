"""The story the browser tests look at: a real registry with three real iris models, a real
serving replica under real traffic, and servers on loopback threads.

v1 and v2 are deployed and verified with their measured accuracy as the baseline; v3 was trained
on shuffled labels, is live and unverified: the degraded deployment the engineer rolls back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from lastgood.adapters.wakeups.change_signals import PollingSignal
from lastgood.domain.versions import GoldenExample
from lastgood.sdk import Lastgood
from lastgood.services.container import Services
from lastgood.serving.loaders import ArtifactLoader
from lastgood.serving.reconciler import ReconcilerOptions
from lastgood.serving.server import ServingOptions, create_serving_app
from tests.helpers_models import IRIS_COLUMNS, IRIS_SCHEMA, train_iris_skops

MODEL, ENV = "iris", "production"


@dataclass(frozen=True)
class Built:
    path: Path
    accuracy: float


def _iris_all() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def train_story(folder: Path) -> list[Built]:
    """Two sound iris classifiers and one fitted to shuffled labels (a broken pipeline)."""
    from sklearn.linear_model import LogisticRegression

    features, labels = _iris_all()
    shuffled = np.random.default_rng(3).permutation(labels)
    built = []
    for i, (c, y) in enumerate(((0.05, labels), (1.0, labels), (1.0, shuffled)), start=1):
        model = LogisticRegression(C=c, max_iter=1000).fit(features, y)
        path = train_iris_skops(folder / f"iris-{i}.skops", model=model)
        built.append(Built(path, float((model.predict(features) == labels).mean())))
    return built


def golden_for(path: Path) -> list[GoldenExample]:
    import skops.io as sio

    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    features, _ = _iris_all()
    rows = features[::50]
    return [GoldenExample(dict(zip(IRIS_COLUMNS, map(float, row), strict=True)), int(out))
            for row, out in zip(rows, model.predict(rows), strict=True)]


MLFLOW_UI = "http://mlflow.example:5000"
# v2 was imported from an MLflow server (its UI is linked), v3 from a local MLflow store
# (no UI to link to), v1 by hand.
PROVENANCE = {2: {"mlflow.model": "Iris Model", "mlflow.version": "7",
                  "mlflow.tracking_uri": MLFLOW_UI + "/"},
              3: {"mlflow.model": "iris", "mlflow.version": "8",
                  "mlflow.tracking_uri": "file:///srv/mlruns"}}


def seed(lg: Lastgood, built: list[Built]) -> None:
    """v1 verified, v2 verified, v3 live and not verified."""
    for i, item in enumerate(built, start=1):
        lg.register(MODEL, item.path, tag=f"v{i}.0", schema=IRIS_SCHEMA,
                    golden=golden_for(item.path), metrics={"accuracy": round(item.accuracy, 4)},
                    provenance=PROVENANCE.get(i))
    for n, item in enumerate(built, start=1):
        lg.deploy(MODEL, n, env=ENV, reason=f"release v{n}.0")
        if n < 3:
            lg.verify(MODEL, env=ENV, reason="bake window passed",
                      baseline={"accuracy": round(item.accuracy, 4), "error_rate": 0.0})




def replica_app(services: Services, cache: Path) -> Any:
    """One real serving replica of ENV following the same registry."""
    loader = ArtifactLoader(store=services.ports.store, formats=services.ports.formats,
                            cache_dir=cache)
    return create_serving_app(
        env=ENV, uow_factory=services.ports.uow, loader=loader, replica_id="replica-1",
        signal=PollingSignal(services.ports.uow, ENV, interval_s=0.05), clock=services.ports.clock,
        options=ServingOptions(reconciler=ReconcilerOptions(heartbeat_s=0.5)))


class Traffic:
    """Predictions with their true labels (and a custom metric, revenue) sent as feedback, a
    few per second, in a thread."""

    def __init__(self, base: str) -> None:
        self._base, self._stop = base, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        features, labels = _iris_all()
        with httpx.Client(base_url=self._base, timeout=10) as http:
            i = 0
            while not self._stop.wait(0.04):
                i = (i + 7) % len(labels)
                record = dict(zip(IRIS_COLUMNS, map(float, features[i]), strict=True))
                try:
                    r = http.post(f"/v1/models/{MODEL}/predict", json={"records": [record]})
                    if r.status_code == 200:
                        http.post(f"/v1/models/{MODEL}/feedback",
                                  json={"request_id": r.json()["request_id"],
                                        "label": int(labels[i]),
                                        "metrics": {"revenue": float(i % 5)}})
                        self.sent += 1
                except httpx.HTTPError:
                    pass  # the replica may be busy switching; the next request tries again
