"""Serving through a real uvicorn on loopback: follow the registry under traffic, several
worker processes on SQLite, and PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastgood.adapters.metrics import http_source
from lastgood.adapters.system.clock import SystemClock
from lastgood.adapters.wakeups.change_signals import (
    PollingSignal,
    PostgresListenSignal,
    signal_for_url,
)
from lastgood.bootstrap.services import open_registry
from lastgood.domain.deployments import DeploymentEnd
from lastgood.domain.measurements import Moments
from lastgood.domain.versions import GoldenExample
from lastgood.ports import UnitOfWorkFactory
from lastgood.serving.change_signals import ManualSignal
from lastgood.serving.reconciler import ReconcilerOptions
from lastgood.serving.server import ServingOptions, create_serving_app, serve
from lastgood.testing import FixedClock, MemoryRegistry, make_new_version, make_verified_record
from tests.net import free_port, running, wait_for
from tests.unit.test_serving_support import MODEL, RECORD, SCHEMA, FakeLoader

pytestmark = pytest.mark.slow
ENV = "production"
CLOCK = FixedClock()


def seed(factory: UnitOfWorkFactory, versions: int = 2) -> None:
    with factory() as uow:
        for n in range(1, versions + 1):
            golden = (GoldenExample(inputs=dict(RECORD), expected=n),)
            uow.versions.add(make_new_version(MODEL, tag=f"v{n}", schema=SCHEMA, golden=golden),
                             at=CLOCK.now(), actor="t")
        uow.commit()


def deploy(factory: UnitOfWorkFactory, number: int) -> None:
    CLOCK.advance(60)
    with factory() as uow:
        live = uow.deployments.live(MODEL, ENV)
        if live is not None:
            uow.deployments.end(live.id, at=CLOCK.now(), end=DeploymentEnd.SUPERSEDED, reason="t")
        dep = uow.deployments.start(model=MODEL, env=ENV, version=number, at=CLOCK.now(),
                                    actor="t", reason="t", operation_id=None)
        uow.deployments.set_verified(dep.id, make_verified_record(at=CLOCK.now()))
        uow.commit()


def replica_versions(factory: UnitOfWorkFactory) -> dict[str, int | None]:
    with factory() as uow:
        return {r.replica_id: r.version for r in uow.replicas.list(model=MODEL, env=ENV)}


def test_a_replica_follows_the_registry_under_traffic_without_failures() -> None:
    registry = MemoryRegistry()
    seed(registry)
    deploy(registry, 1)
    app = create_serving_app(env=ENV, uow_factory=registry, loader=FakeLoader(),
                             replica_id="it-1", clock=CLOCK,
                             signal=PollingSignal(registry, ENV, interval_s=0.01),
                             options=ServingOptions(reconciler=ReconcilerOptions(heartbeat_s=0.5)))
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert wait_for(lambda: http.get("/readyz").status_code == 200)
        results: list[tuple[int, str]] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=base, timeout=10) as own:
                while not stop.is_set() and len(results) < 5000:
                    r = own.post(f"/v1/models/{MODEL}/predict", json={"records": [RECORD]})
                    results.append((r.status_code, r.headers.get("X-Model-Version", "")))

        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        wait_for(lambda: len(results) > 30)
        deploy(registry, 2)
        switched = wait_for(lambda: results[-1][1] == "2")
        stop.set()
        for w in workers:
            w.join(15)
        assert switched
        assert {status for status, _ in results} == {200}
        assert {version for _, version in results} == {"1", "2"}
        assert wait_for(lambda: replica_versions(registry) == {"it-1": 2})
        model = http.get(f"/v1/models/{MODEL}").json()
        assert model["live"]["version"] == 2
        assert [s["version"] for s in model["standby"]] == [1]
        assert "lastgood_requests_total" in http.get("/metrics").text


def test_feedback_metrics_reach_stats_metrics_and_the_gateway_source() -> None:
    registry = MemoryRegistry()
    seed(registry)
    deploy(registry, 1)
    app = create_serving_app(env=ENV, uow_factory=registry, loader=FakeLoader(),
                             replica_id="it-custom", clock=CLOCK,
                             signal=PollingSignal(registry, ENV, interval_s=0.05))
    url = f"/v1/models/{MODEL}/feedback"
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert wait_for(lambda: http.get("/readyz").status_code == 200)
        ids = [http.post(f"/v1/models/{MODEL}/predict", json={"records": [RECORD]})
               .headers["X-Request-Id"] for _ in range(5)]
        told = http.post(url, json={"request_id": ids[0], "label": 1,
                                    "metrics": {"revenue": 12.5, "clicks": 2}})
        assert told.status_code == 200, told.text
        assert told.json() == {"request_id": ids[0], "version": 1, "correct": True,
                               "metrics": ["clicks", "revenue"]}
        only = http.post(url, json={"request_id": ids[1], "metrics": {"revenue": -2.5}})
        assert only.status_code == 200, only.text
        assert "correct" not in only.json()
        assert http.post(url, json={"request_id": ids[1], "metrics": {"revenue": 1}}
                         ).status_code == 404  # each request id is scored once

        before = http.get(f"/v1/models/{MODEL}/stats").json()
        for bad in ({"request_id": ids[2]},
                    {"request_id": ids[2], "metrics": {}},
                    {"request_id": ids[2], "metrics": [1]},
                    {"request_id": ids[2], "label": 1, "metrics": {"Revenue": 1}},
                    {"request_id": ids[2], "label": 1, "metrics": {"revenue": 1, "x": True}},
                    {"request_id": ids[2], "label": 1, "metrics": {"revenue": "12"}},
                    {"request_id": ids[2], "metrics": {f"m{i}": 1 for i in range(17)}}):
            refused = http.post(url, json=bad)
            assert 400 <= refused.status_code < 500, (bad, refused.text)
            error = refused.json()["error"]
            assert error["message"], error
            assert error["fix"], error
        for number in (b"NaN", b"Infinity", b"1e400", b"1" + b"0" * 400):
            raw = http.post(url, content=b'{"request_id": "%s", "metrics": {"revenue": %s}}'
                            % (ids[2].encode(), number))
            assert raw.status_code == 422, raw.text
            assert raw.json()["error"]["field"] == "metrics.revenue"
        for rid, names in ((ids[2], [f"m{i}" for i in range(16)]),
                           (ids[3], [f"k{i}" for i in range(14)])):  # 2 + 16 + 14: the limit
            filled = http.post(url, json={"request_id": rid, "metrics": dict.fromkeys(names, 1)})
            assert filled.status_code == 200, filled.text
        over = http.post(url, json={"request_id": ids[4], "label": 1, "metrics": {
            "n1": 1, "revenue": 100}})  # one name more than 32
        assert over.status_code == 409  # well formed, but past what the version counts
        assert "limit of 32" in over.json()["error"]["message"]
        after = http.get(f"/v1/models/{MODEL}/stats").json()
        [entry] = after["versions"]
        assert entry["feedback"] == before["versions"][0]["feedback"] == \
            {"total": 1, "correct": 1, "accuracy": 1.0, "output": None}
        assert entry["custom"]["revenue"] == {"count": 2, "mean": 5.0, "m2": 112.5}
        assert entry["custom"]["clicks"] == {"count": 1, "mean": 2.0, "m2": 0.0}
        assert len(entry["custom"]) == 32
        assert "n1" not in entry["custom"]
        # The refused call consumed nothing: its request id still takes feedback.
        assert http.post(url, json={"request_id": ids[4], "metrics": {"revenue": 5}}
                         ).json()["metrics"] == ["revenue"]

        text = http.get("/metrics").text
        labels = f'metric="revenue",model="{MODEL}",version="1"'
        assert f"lastgood_custom_metric_count_total{{{labels}}} 3.0" in text
        assert f"lastgood_custom_metric_sum{{{labels}}} 15.0" in text
        assert f"lastgood_custom_metric_sum_squares_total{{{labels}}} 187.5" in text

        source = http_source([base], clock=CLOCK)
        window = source.window(MODEL, ENV, 1, since=CLOCK.now() - timedelta(hours=1))
        source.close()
        assert not window.problems
        assert window.summary.custom["revenue"] == Moments.of([12.5, -2.5, 5.0])


def _serve_sqlite(url: str, port: int) -> None:
    serve(ENV, host="127.0.0.1", port=port, workers=2,
          uow_factory_builder=partial(open_registry, url), loader_builder=FakeLoader,
          signal_builder=signal_for_url(url, poll_interval_s=0.02), clock=SystemClock(),
          replica_prefix="it", options=ServingOptions(
              reconciler=ReconcilerOptions(heartbeat_s=0.5), poll_interval_s=0.02))




def _serve_sqlite_unpolled(url: str, port: int) -> None:
    """Two replicas whose poll looks once an hour: only an announcement moves them sooner."""
    serve(ENV, host="127.0.0.1", port=port, workers=2,
          uow_factory_builder=partial(open_registry, url), loader_builder=FakeLoader,
          signal_builder=signal_for_url(url, poll_interval_s=3600), clock=SystemClock(),
          replica_prefix="quiet", options=ServingOptions(reconciler=ReconcilerOptions(
              resync_s=3600, heartbeat_s=3600), poll_interval_s=3600))


def test_a_sqlite_commit_wakes_replica_processes_without_their_poll(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = open_registry(url)
    seed(registry)
    deploy(registry, 1)
    committing = open_registry(url, announce=True)  # as every committing process opens it
    assert committing.announcer is not None
    proc = multiprocessing.get_context("spawn").Process(target=_serve_sqlite_unpolled,
                                                        args=(url, free_port()))
    proc.start()
    try:
        assert wait_for(lambda: replica_versions(registry) == {"quiet/0": 1, "quiet/1": 1},
                        timeout_s=60)
        deploy(committing, 2)  # no poll, resync or heartbeat for an hour: only the datagram
        assert wait_for(lambda: replica_versions(registry) == {"quiet/0": 2, "quiet/1": 2},
                        timeout_s=60)
    finally:
        proc.terminate()
        proc.join(30)
    registry.dispose()
    committing.dispose()


def test_two_worker_processes_are_two_replicas_following_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = open_registry(url)
    seed(registry)
    deploy(registry, 1)
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(target=_serve_sqlite, args=(url, port))
    proc.start()
    try:
        assert wait_for(lambda: replica_versions(registry) == {"it/0": 1, "it/1": 1}, timeout_s=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            first = http.post(f"/v1/models/{MODEL}/predict", json={"records": [RECORD]})
            assert first.headers["X-Model-Version"] == "1"
            deploy(registry, 2)
            assert wait_for(lambda: replica_versions(registry) == {"it/0": 2, "it/1": 2})
            answers = {http.post(f"/v1/models/{MODEL}/predict", json={"records": [RECORD]},
                                 headers={"Connection": "close"}).json()["version"]
                       for _ in range(20)}
            assert answers == {2}
    finally:
        proc.terminate()
        proc.join(30)
    assert proc.exitcode is not None
    assert set(replica_versions(registry).values()) == {None}  # both said they stopped
    registry.dispose()


@pytest.mark.postgres
def test_postgres_notify_wakes_a_replica_without_polling(pg_url: str) -> None:
    registry = open_registry(pg_url)
    seed(registry)
    deploy(registry, 1)
    signal: Any = PostgresListenSignal(pg_url, ENV)
    app = create_serving_app(env=ENV, uow_factory=registry, loader=FakeLoader(),
                             replica_id="pg-1", clock=CLOCK, signal=signal,
                             options=ServingOptions(reconciler=ReconcilerOptions(
                                 resync_s=3600, heartbeat_s=3600)))
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert wait_for(lambda: http.get("/readyz").status_code == 200)
        deploy(registry, 2)  # no resync for an hour: only the NOTIFY can move it
        assert wait_for(lambda: http.get(f"/v1/models/{MODEL}").json()["live"]["version"] == 2)
    registry.dispose()


def test_manual_signal_is_a_valid_change_signal() -> None:
    async def go() -> bool:
        signal = ManualSignal()
        signal.notify()
        return await signal.wait(timeout_s=1, generation=None)

    assert asyncio.run(go()) is True
