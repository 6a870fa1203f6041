"""Running replicas: the serving app (gateway + reconciler) and `serve()`, which the CLI calls.

With `workers > 1`, `serve` spawns that many processes; each binds its own listening socket on
the same port with SO_REUSEPORT (the kernel spreads connections among them), builds its own
registry connection, and is its own replica (`<prefix>/<index>`) following the registry. Spawned,
not forked: database connections and threads never cross a fork. The builders are therefore
called inside each worker and must pickle (module-level functions or functools.partial).
uvicorn's own `workers=` was not used because it needs the app as an import string, which cannot
carry the builders the composition root passes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from lastgood.ports import ArtifactStore, Clock, ModelFormats, UnitOfWorkFactory
from lastgood.serving.evidence import EvidenceOptions, Recorder
from lastgood.serving.gateway import GatewayOptions, create_gateway
from lastgood.serving.loaders import ArtifactLoader
from lastgood.serving.loading import Loader
from lastgood.serving.readiness import ReadinessCollector
from lastgood.serving.reconciler import Reconciler, ReconcilerOptions
from lastgood.serving.signals import (
    ChangeSignal,
    PollingSignal,
    PostgresListenSignal,
    file_fingerprint,
)
from lastgood.serving.state import ServingState

__all__ = ["ServingOptions", "SignalBuilder", "advertised_url", "bind_socket", "create_serving_app",
           "default_replica_prefix", "serve", "signal_for_url", "sqlite_file"]

log = logging.getLogger(__name__)

SignalBuilder = Callable[[UnitOfWorkFactory, str], ChangeSignal]
"""Builds a replica's change signal from its unit-of-work factory and environment."""


@dataclass(frozen=True, slots=True)
class ServingOptions:
    """Everything tunable about a replica, grouped by part."""

    reconciler: ReconcilerOptions = field(default_factory=ReconcilerOptions)
    gateway: GatewayOptions = field(default_factory=GatewayOptions)
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)
    # The SQLite poll: a stat of the database file per tick, a registry read only when it
    # changed, so a short tick is cheap and bounds how late a replica sees a rollback.
    poll_interval_s: float = 0.01
    log_level: str = "warning"
    # Registry reads run in threads; each blocking call hands the GIL back and waits up to the
    # switch interval (5 ms by default) to get it again while the loop serves requests, so a
    # read of ten queries could take 50 ms under load. 1 ms keeps a switch prompt.
    gil_switch_interval_s: float | None = 0.001


class SystemClock:
    """The wall clock, timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def polling_signal(uow_factory: UnitOfWorkFactory, env: str, *, interval_s: float,
                   sqlite_path: str | None = None) -> ChangeSignal:
    fingerprint = None
    if sqlite_path:  # WAL mode writes the -wal file first; a checkpoint writes the database
        fingerprint = file_fingerprint(sqlite_path, f"{sqlite_path}-wal")
    return PollingSignal(uow_factory, env, interval_s=interval_s, fingerprint=fingerprint)


def sqlite_file(db_url: str) -> str | None:
    """The file of a `sqlite:///PATH` URL; None for memory databases and other URLs."""
    if not db_url.startswith("sqlite") or ":///" not in db_url:
        return None
    path = db_url.split(":///", 1)[1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def listen_signal(db_url: str, uow_factory: UnitOfWorkFactory, env: str) -> ChangeSignal:
    return PostgresListenSignal(db_url, env)


def signal_for_url(db_url: str, *, poll_interval_s: float = 0.01) -> SignalBuilder:
    """PostgreSQL LISTEN/NOTIFY for a postgresql URL, a generation poll for anything else
    (for a SQLite file, only when the file changed: a stat instead of a query)."""
    if db_url.startswith(("postgresql", "postgres:")):
        return partial(listen_signal, db_url)
    return partial(polling_signal, interval_s=poll_interval_s, sqlite_path=sqlite_file(db_url))


def create_serving_app(*, env: str, uow_factory: UnitOfWorkFactory, loader: Loader,
                       replica_id: str, signal: ChangeSignal, clock: Clock | None = None,
                       options: ServingOptions = ServingOptions(), url: str = "") -> Starlette:
    """One replica as an ASGI app: the gateway, with the reconciler running in its lifespan.

    `url` is where it answers; its reports carry it, so watches find every replica."""
    clock = clock or SystemClock()
    state = ServingState(env=env, recorder=Recorder(options=options.evidence))
    reconciler = Reconciler(env=env, uow_factory=uow_factory, loader=loader, clock=clock,
                            replica_id=replica_id, state=state, signal=signal,
                            options=options.reconciler, url=url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(reconciler.run(), name=f"reconcile-{replica_id}")
        try:
            yield
        finally:
            await reconciler.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            app.state.gateway.pool.shutdown(wait=False)

    app = create_gateway(state, options=options.gateway, clock=clock, lifespan=lifespan)
    state.recorder.registry.register(ReadinessCollector(
        env=env, replica_id=replica_id, tables=state.tables, prover=reconciler.prover))
    app.state.reconciler = reconciler
    app.state.serving = state
    return app


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening TCP socket; with `reuse_port` several processes can bind the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Accepted connections inherit this on Linux; without it, uvloop over a pre-bound socket
    # leaves Nagle on, and a response's header and body segments wait ~40 ms for delayed ACKs.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def advertised_url(host: str, port: int) -> str:
    """The URL others reach this replica at: the bound address, or this host's name when it
    listens on every interface."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def default_replica_prefix(host: str, port: int) -> str:
    """`<hostname>:<port>`: stable across restarts, so reports replace rather than pile up."""
    return f"{socket.gethostname()}:{port}"


@dataclass(frozen=True)
class _WorkerSpec:
    env: str
    host: str
    port: int
    replica_id: str
    reuse_port: bool
    uow_factory_builder: Callable[[], UnitOfWorkFactory]
    loader_builder: Callable[[], Loader]
    signal_builder: SignalBuilder
    options: ServingOptions
    wrap_app: Callable[[Starlette], Starlette] | None = None  # e.g. run the watch in-process


def _run_worker(spec: _WorkerSpec) -> None:
    """One replica process: build its own connections, bind, and serve until told to stop."""
    logging.basicConfig(level=spec.options.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if spec.options.gil_switch_interval_s is not None:
        sys.setswitchinterval(spec.options.gil_switch_interval_s)
    uow_factory = spec.uow_factory_builder()
    sock = bind_socket(spec.host, spec.port, reuse_port=spec.reuse_port)
    # Workers sharing a port share one URL, behind which each holds only its share of the
    # counters: they report no URL, so a watch never mixes their readings.
    url = "" if spec.reuse_port else advertised_url(spec.host, sock.getsockname()[1])
    app = create_serving_app(env=spec.env, uow_factory=uow_factory, loader=spec.loader_builder(),
                             replica_id=spec.replica_id,
                             signal=spec.signal_builder(uow_factory, spec.env),
                             options=spec.options, url=url)
    if spec.wrap_app is not None:
        app = spec.wrap_app(app)
    config = uvicorn.Config(app, log_level=spec.options.log_level, access_log=False,
                            lifespan="on", ws="none", timeout_graceful_shutdown=10)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def _artifact_loader(store_builder: Callable[[], ArtifactStore],
                     formats_builder: Callable[[], ModelFormats], cache_dir: Path) -> Loader:
    return ArtifactLoader(store=store_builder(), formats=formats_builder(), cache_dir=cache_dir)


def serve(env: str, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
          uow_factory_builder: Callable[[], UnitOfWorkFactory],
          store_builder: Callable[[], ArtifactStore] | None = None,
          formats_builder: Callable[[], ModelFormats] | None = None,
          cache_dir: Path | None = None,
          loader_builder: Callable[[], Loader] | None = None,
          signal_builder: SignalBuilder | None = None,
          db_url: str = "",
          replica_prefix: str | None = None,
          options: ServingOptions = ServingOptions(),
          wrap_app: Callable[[Starlette], Starlette] | None = None) -> None:
    """Serve every model deployed to `env` until SIGINT/SIGTERM (blocking).

    Give either `loader_builder`, or `store_builder` + `formats_builder` + `cache_dir` (files are
    fetched there before loading). Without `signal_builder`, `signal_for_url(db_url)` picks
    LISTEN/NOTIFY for PostgreSQL and a (stat-gated, for SQLite) generation poll otherwise.
    `wrap_app` is applied to each worker's app before it serves (`lastgood serve --watch`
    wraps the lifespan to run the watch there).
    """
    if loader_builder is None:
        if store_builder is None or formats_builder is None or cache_dir is None:
            raise ValueError("serve() needs loader_builder, or store_builder, formats_builder "
                             "and cache_dir")
        loader_builder = partial(_artifact_loader, store_builder, formats_builder, cache_dir)
    if workers > 1 and port == 0:
        raise ValueError("several workers need a fixed port to share (SO_REUSEPORT)")
    prefix = replica_prefix or default_replica_prefix(host, port)
    specs = [_WorkerSpec(env=env, host=host, port=port,
                         replica_id=prefix if workers == 1 else f"{prefix}/{i}",
                         reuse_port=workers > 1, uow_factory_builder=uow_factory_builder,
                         loader_builder=loader_builder,
                         signal_builder=signal_builder or signal_for_url(
                             db_url, poll_interval_s=options.poll_interval_s),
                         options=options, wrap_app=wrap_app) for i in range(max(workers, 1))]
    if len(specs) == 1:
        _run_worker(specs[0])
    else:
        _supervise(specs)


def _supervise(specs: list[_WorkerSpec], *, max_restarts: int = 5) -> None:
    """Run one spawned process per spec; restart a crashed one; stop all on SIGINT/SIGTERM."""
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    procs = {i: ctx.Process(target=_run_worker, args=(spec,), name=spec.replica_id)
             for i, spec in enumerate(specs)}
    restarts = 0
    try:
        for proc in procs.values():
            proc.start()
        while not stopping:
            time.sleep(0.2)
            for i, proc in list(procs.items()):
                if not proc.is_alive() and not stopping and restarts < max_restarts:
                    log.warning("worker %s exited with %s; restarting", proc.name, proc.exitcode)
                    restarts += 1
                    procs[i] = ctx.Process(target=_run_worker, args=(specs[i],), name=proc.name)
                    procs[i].start()
            if all(not p.is_alive() for p in procs.values()):
                break
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn drains in-flight requests, then exits
        for proc in procs.values():
            proc.join(15)
            if proc.is_alive():
                proc.kill()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
