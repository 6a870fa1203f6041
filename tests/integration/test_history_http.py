"""The metric history over HTTP on the real control plane (SQLite file registry): what replicas
wrote comes back as per-version points with baselines and markers; the URL cannot ask for an
unbounded reading; refusals are one line with the fix; a remote CLI reads the same."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lastgood.bootstrap import build_control_plane, open_services
from lastgood.config import load_settings
from lastgood.domain.access import Role
from lastgood.domain.history import HistoryPoint, epoch_s
from lastgood.domain.measurements import LATENCY_BOUNDS, Histogram, RateCounts, Summary
from lastgood.remote.client import RemoteControlPlane
from lastgood.sdk import Lastgood
from lastgood.services.container import Services
from lastgood.services.signing import NoKeyRing
from tests.integration.test_dashboard_http import seed
from tests.net import running

HISTORY = "/api/v1/models/iris/metrics/history"


@dataclass
class Plane:
    base: str
    http: httpx.Client
    services: Services
    token: str


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    settings = load_settings({"LASTGOOD_HOME": str(tmp_path / "home"), "LASTGOOD_ACTOR": "t"})
    services = open_services(settings)
    seed(services)  # v1 verified at EPOCH, v2 live an hour later
    now = datetime.now(UTC)
    with services.ports.uow() as uow:
        uow.history.add([HistoryPoint("iris", "production", 2, f"r{r}", 10,
                                      (epoch_s(now) - 600 + 10 * i) // 10 * 10, Summary(
                                          errors=RateCounts(1, 50), accuracy=RateCounts(9, 10),
                                          latency=Histogram.of([0.02] * 50, LATENCY_BOUNDS)))
                         for i in range(30) for r in (1, 2)])
        uow.commit()
    app = build_control_plane(services, settings)
    token = services.access.create_token("watcher", role=Role.VIEWER, actor="admin").secret
    with Lastgood(services=services), running(app) as base, \
            httpx.Client(base_url=base, timeout=10,
                         headers={"Authorization": f"Bearer {token}"}) as http:
        yield Plane(base, http, services, token)


def test_the_last_hour_merges_the_replicas(plane: Plane) -> None:
    answer = plane.http.get(HISTORY, params={"env": "production", "since": "1h"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["resolution_s"] == 10
    assert len(body["points"]) == 30
    assert {p["requests"] for p in body["points"]} == {100}  # two replicas of 50
    assert {p["version"] for p in body["points"]} == {2}
    assert body["points"][0]["latency_p95_ms"] == pytest.approx(20, rel=0.1)
    [span] = [s for s in body["spans"] if s["version"] == 2]
    assert span["reference_version"] == 1
    assert span["values"]["error_rate"] == 0.01
    assert span["band"]["error_rate"][0] == 0.01
    fewer = plane.http.get(HISTORY, params={"env": "production", "since": "1h", "buckets": 12})
    assert fewer.json()["resolution_s"] == 300


@pytest.mark.parametrize(("params", "status", "says"), [
    ({"env": "production", "since": "forever"}, 422, "since"),
    ({"env": "production", "buckets": 10**6}, 422, ""),
    ({"env": "staging"}, 404, ""),
])
def test_bad_requests_are_refused_before_any_scan(plane: Plane, params: dict[str, object],
                                                   status: int, says: str) -> None:
    answer = plane.http.get(HISTORY, params=params)
    assert answer.status_code == status
    assert says in answer.text


def test_a_span_beyond_the_kept_history_is_held_to_it(plane: Plane) -> None:
    longest = plane.http.get(HISTORY, params={"env": "production", "since": "30d"})
    beyond = plane.http.get(HISTORY, params={"env": "production", "since": "400d"})
    assert beyond.status_code == longest.status_code == 200
    assert beyond.json()["resolution_s"] == longest.json()["resolution_s"]


def test_unknown_model_and_missing_token(plane: Plane) -> None:
    missing = plane.http.get("/api/v1/models/nope/metrics/history", params={"env": "production"})
    assert missing.status_code == 404
    assert "register" in missing.json()["fix"]
    anonymous = httpx.get(plane.base + HISTORY, params={"env": "production"})
    assert anonymous.status_code == 401


def test_a_remote_control_plane_reads_the_same_view(plane: Plane) -> None:
    transport = httpx.HTTPTransport()
    remote = RemoteControlPlane(plane.base, plane.token, keyring=NoKeyRing(),
                                transport=transport)
    try:
        seen = remote.history.view("iris", env="production", span=timedelta(hours=1))
    finally:
        transport.close()
    local = plane.services.history.view("iris", env="production", span=timedelta(hours=1))
    assert seen.points == local.points
    assert seen.spans == local.spans
