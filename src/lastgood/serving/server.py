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
from typing import Any

import uvicorn
from starlette.applications import Starlette

from lastgood.ports import ChangeSignal, Clock, UnitOfWorkFactory
from lastgood.serving.evidence import EvidenceOptions, Recorder
from lastgood.serving.gateway import GatewayOptions, create_gateway
from lastgood.serving.loading import Loader
from lastgood.serving.reconciler import Reconciler, ReconcilerOptions
from lastgood.serving.replay_proof import ReplayCollector
from lastgood.serving.reservoir import ReservoirOptions, Reservoirs
from lastgood.serving.standby_prover import ReadinessCollector
from lastgood.serving.state import ServingState

__all__ = ["ServingOptions", "SignalBuilder", "advertised_url", "bind_socket", "create_serving_app",
           "default_replica_prefix", "serve"]

log = logging.getLogger(__name__)

SignalBuilder = Callable[[UnitOfWorkFactory, str], ChangeSignal]
"""Builds a replica's change signal from its unit-of-work factory and environment (the
composition root passes the registry's: `adapters.wakeups.change_signals.signal_for_url`)."""


@dataclass(frozen=True, slots=True)
class ServingOptions:
    """Everything tunable about a replica, grouped by part."""

    reconciler: ReconcilerOptions = field(default_factory=ReconcilerOptions)
    gateway: GatewayOptions = field(default_factory=GatewayOptions)
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)
    reservoir: ReservoirOptions = field(default_factory=ReservoirOptions)
    # The SQLite poll: a stat of the database file per tick, a registry read only when it
    # changed, so a short tick is cheap and bounds how late a replica sees a rollback.
    poll_interval_s: float = 0.01
    log_level: str = "warning"
    # Registry reads run in threads; each blocking call hands the GIL back and waits up to the
    # switch interval (5 ms by default) to get it again while the loop serves requests, so a
    # read of ten queries could take 50 ms under load. 1 ms keeps a switch prompt.
    gil_switch_interval_s: float | None = 0.001


def create_serving_app(*, env: str, uow_factory: UnitOfWorkFactory, loader: Loader,
                       replica_id: str, signal: ChangeSignal, clock: Clock,
                       options: ServingOptions = ServingOptions(), url: str = "") -> Starlette:
    """One replica as an ASGI app: the gateway, with the reconciler running in its lifespan.

    `url` is where it answers; its reports carry it, so watches find every replica."""
    state = ServingState(env=env, recorder=Recorder(options=options.evidence),
                         reservoirs=Reservoirs(options.reservoir))
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
            await app.state.gateway.core.blame.stop()
            app.state.gateway.pool.shutdown(wait=False)

    app = create_gateway(state, options=options.gateway, clock=clock, lifespan=lifespan)
    state.recorder.registry.register(ReadinessCollector(
        env=env, replica_id=replica_id, tables=state.tables, prover=reconciler.prover))
    state.recorder.registry.register(ReplayCollector(env=env, tables=state.tables,
                                                     prover=reconciler.replayer))
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
    clock: Clock
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
                             clock=spec.clock, options=spec.options, url=url)
    if spec.wrap_app is not None:
        app = spec.wrap_app(app)
    config = uvicorn.Config(app, log_level=spec.options.log_level, access_log=False,
                            lifespan="on", ws="none", timeout_graceful_shutdown=10)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def serve(env: str, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
          uow_factory_builder: Callable[[], UnitOfWorkFactory],
          loader_builder: Callable[[], Loader],
          signal_builder: SignalBuilder,
          clock: Clock,
          replica_prefix: str | None = None,
          options: ServingOptions = ServingOptions(),
          wrap_app: Callable[[Starlette], Starlette] | None = None) -> None:
    """Serve every model deployed to `env` until SIGINT/SIGTERM (blocking).

    The composition root passes what each worker builds its parts with: `uow_factory_builder`
    its registry connection, `loader_builder` its model loader, `signal_builder` its change
    signal, and `clock` the time (all picklable: workers are spawned).
    `wrap_app` is applied to each worker's app before it serves (`lastgood serve --watch`
    wraps the lifespan to run the watch there).
    """
    if workers > 1 and port == 0:
        raise ValueError("several workers need a fixed port to share (SO_REUSEPORT)")
    prefix = replica_prefix or default_replica_prefix(host, port)
    specs = [_WorkerSpec(env=env, host=host, port=port,
                         replica_id=prefix if workers == 1 else f"{prefix}/{i}",
                         reuse_port=workers > 1, uow_factory_builder=uow_factory_builder,
                         loader_builder=loader_builder,
                         signal_builder=signal_builder, clock=clock,
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
