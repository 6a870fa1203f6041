"""Serving through a real uvicorn on loopback: follow the registry under traffic, several
worker processes on SQLite, and PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from lastgood.adapters.sql import open_registry
from lastgood.domain.deployments import DeploymentEnd
from lastgood.domain.versions import GoldenExample
from lastgood.ports import UnitOfWorkFactory
from lastgood.serving.reconciler import ReconcilerOptions
from lastgood.serving.server import ServingOptions, bind_socket, create_serving_app, serve
from lastgood.serving.signals import ManualSignal, PollingSignal, PostgresListenSignal
from lastgood.testing import FixedClock, MemoryRegistry, make_new_version, make_verified_record
from tests.net import free_port
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


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    return False


@contextmanager
def running(app: Starlette) -> Iterator[str]:
    """`app` on a real uvicorn bound to a free loopback port, in a thread."""
    sock = bind_socket("127.0.0.1", 0, reuse_port=False)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws="none"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started, timeout_s=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


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


def _serve_sqlite(url: str, port: int) -> None:
    serve(ENV, host="127.0.0.1", port=port, workers=2,
          uow_factory_builder=partial(open_registry, url), loader_builder=FakeLoader,
          db_url=url, replica_prefix="it", options=ServingOptions(
              reconciler=ReconcilerOptions(heartbeat_s=0.5), poll_interval_s=0.02))




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
