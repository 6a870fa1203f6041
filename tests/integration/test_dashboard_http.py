"""The dashboard over HTTP on the real control plane: the page and its files come from the
package and load nothing from elsewhere; the live-metrics endpoint is token-guarded, says when
no stats source is connected, and otherwise serves real counters against the verified baseline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from lastgood.bootstrap import build_control_plane, open_services
from lastgood.config import load_settings
from lastgood.dashboard import ServedStats, VersionCounters
from lastgood.dashboard.metrics import MetricsSeries
from lastgood.dashboard.web import STATIC
from lastgood.domain.access import Role
from lastgood.domain.deployments import DeploymentEnd
from lastgood.sdk import Lastgood
from lastgood.services.container import Services
from lastgood.testing import EPOCH, make_environment, make_new_version, make_verified_record
from tests.net import running

METRICS = "/api/v1/models/iris/metrics"


@dataclass
class Plane:
    app: FastAPI
    http: httpx.Client
    services: Services
    viewer: dict[str, str]


def seed(services: Services) -> None:
    """iris v1 verified (error rate 1 %, p95 40 ms), v2 live and not verified."""
    with services.ports.uow() as uow:
        uow.environments.put(make_environment())
        for tag in ("v1", "v2"):
            uow.versions.add(make_new_version("iris", tag=tag), at=EPOCH, actor="t")
        first = uow.deployments.start(model="iris", env="production", version=1, at=EPOCH,
                                      actor="t", reason="r", operation_id=None)
        uow.deployments.set_verified(first.id, make_verified_record(
            at=EPOCH, baseline={"error_rate": 0.01, "p95_ms": 40.0}))
        later = EPOCH + timedelta(hours=1)
        uow.deployments.end(first.id, at=later, end=DeploymentEnd.SUPERSEDED, reason="r")
        uow.deployments.start(model="iris", env="production", version=2, at=later, actor="t",
                              reason="r", operation_id=None)
        uow.commit()


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    settings = load_settings({"LASTGOOD_HOME": str(tmp_path / "home"), "LASTGOOD_ACTOR": "t"})
    services = open_services(settings)
    seed(services)
    app = build_control_plane(services, settings)
    token = services.access.create_token("watcher", role=Role.VIEWER, actor="admin").secret
    with Lastgood(services=services), running(app) as base, \
            httpx.Client(base_url=base, timeout=10) as http:
        yield Plane(app, http, services, {"Authorization": f"Bearer {token}"})


def test_the_page_and_its_files_are_served_from_the_package(plane: Plane) -> None:
    page = plane.http.get("/dashboard/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert plane.http.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/"
    for name in ("app.js", "app.css"):
        served = plane.http.get(f"/dashboard/static/{name}")
        assert served.status_code == 200
        assert served.content == (STATIC / name).read_bytes()


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", text), path.name
        assert not re.search(r"@import|url\(\s*[\"']?(?:https?:)?//", text), path.name
        assert not re.search(r"fetch\(\s*[\"'`]https?://", text), path.name


def test_metrics_need_a_token_and_the_denial_is_audited(plane: Plane) -> None:
    refused = plane.http.get(METRICS, params={"env": "production"})
    assert refused.status_code == 401
    assert refused.json()["error"] == "Unauthorized"
    assert refused.json()["fix"]
    events = plane.services.registry.events()
    assert events[-1].draft.outcome == "refused"
    assert events[-1].draft.evidence["request"] == f"GET {METRICS}"


def test_without_a_stats_source_there_are_no_points_and_no_pretence(plane: Plane) -> None:
    found = plane.http.get(METRICS, params={"env": "production"}, headers=plane.viewer)
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["source"], body["points"]) == (None, [])
    # v2 is live but unverified: the charts compare it with the last verified deployment's
    assert body["baseline_version"] == 1
    assert body["baseline"] == {"latency_p95_ms": 40.0, "error_rate": 0.01, "accuracy": None}
    assert body["band"]["error_rate"] == pytest.approx([0.01, 0.0125])


def test_points_come_from_the_connected_stats_source(plane: Plane) -> None:
    reads = iter([(100, 1), (300, 11)])

    def live_stats(model: str, env: str) -> ServedStats | None:
        requests, errors = next(reads)
        return ServedStats("replica-a", 2, (VersionCounters(2, requests, errors, 12.5),))

    plane.app.state.live_stats = live_stats
    plane.app.state.dashboard.series = MetricsSeries(min_interval_s=0)
    plane.http.get(METRICS, params={"env": "production"}, headers=plane.viewer)
    body = plane.http.get(METRICS, params={"env": "production"}, headers=plane.viewer).json()
    assert body["source"] == "replica-a"
    assert [(p["version"], p["error_rate"], p["latency_p95_ms"]) for p in body["points"]] == [
        (2, 0.01, 12.5), (2, 0.05, 12.5)]


def test_unknown_models_and_missing_envs_are_refused(plane: Plane) -> None:
    missing = plane.http.get("/api/v1/models/nope/metrics", params={"env": "production"},
                             headers=plane.viewer)
    assert missing.status_code == 404
    assert missing.json()["error"] == "NotFound"
    assert plane.http.get(METRICS, headers=plane.viewer).status_code in (400, 422)


def test_the_metrics_endpoint_is_in_the_openapi_document(plane: Plane) -> None:
    doc = plane.http.get("/openapi.json").json()
    op = doc["paths"]["/api/v1/models/{name}/metrics"]["get"]
    assert {"200", "401", "403", "404"} <= set(op["responses"])
    assert "/dashboard/" not in doc["paths"]


def test_after_a_rollback_the_baseline_is_the_restored_versions_own(plane: Plane) -> None:
    """v2 verified with its own (worse) numbers, then rolled back to v1: the charts compare
    with v1's record, not with the quarantined v2's."""
    later = EPOCH + timedelta(hours=2)
    with plane.services.ports.uow() as uow:
        live = uow.deployments.live("iris", "production")
        assert live is not None
        uow.deployments.set_verified(live.id, make_verified_record(
            at=later, baseline={"error_rate": 0.2, "p95_ms": 400.0}))
        uow.deployments.end(live.id, at=later, end=DeploymentEnd.ROLLED_BACK, reason="bad")
        uow.deployments.start(model="iris", env="production", version=1, at=later, actor="t",
                              reason="rollback", operation_id=None)
        uow.commit()
    body = plane.http.get(METRICS, params={"env": "production"}, headers=plane.viewer).json()
    assert body["baseline_version"] == 1
    assert body["baseline"]["error_rate"] == 0.01
