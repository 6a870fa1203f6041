"""The demo's replica: a serving replica with the watch inside, on a free loopback port, in a
thread of this process (what `lastgood serve --watch` does), and the demo's automatic rollback
story run over it."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from lastgood.adapters.wakeups.change_signals import PollingSignal
from lastgood.bootstrap.watch import attach_watch
from lastgood.cli import demo_watch
from lastgood.cli.demo_watch import Timeline, wait_until
from lastgood.services.container import Services
from lastgood.services.watch_setup import WatchOptions
from lastgood.serving.loaders import ArtifactLoader
from lastgood.serving.reconciler import ReconcilerOptions
from lastgood.serving.server import ServingOptions, bind_socket, create_serving_app

__all__ = ["replica_with_watch", "run_auto_rollback"]


@contextmanager
def replica_with_watch(services: Services, *, env: str, cache_dir: Path,
                       options: WatchOptions) -> Iterator[str]:
    """A serving replica with the watch inside, on a free loopback port; yields its URL."""
    ports = services.ports
    app = create_serving_app(
        env=env, uow_factory=ports.uow, replica_id="demo-replica",
        loader=ArtifactLoader(store=ports.store, formats=ports.formats, cache_dir=cache_dir),
        signal=PollingSignal(ports.uow, env, interval_s=0.05), clock=ports.clock,
        options=ServingOptions(reconciler=ReconcilerOptions(heartbeat_s=1.0)))
    attach_watch(app, services, options)
    sock = bind_socket("127.0.0.1", 0, reuse_port=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on", ws="none"))
    # As `lastgood serve` does: the watch and the rollback's archive share the GIL with the
    # event loop; a short switch interval keeps requests prompt while they work.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(ServingOptions().gil_switch_interval_s or previous)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True, name="demo-replica")
    thread.start()
    try:
        wait_until(lambda: server.started, timeout_s=30)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
        sys.setswitchinterval(previous)


def run_auto_rollback(services: Services, **story: Any) -> Timeline:
    """The demo's second act (`lastgood.cli.demo_watch.run_auto_rollback`) over this replica."""
    return demo_watch.run_auto_rollback(services, replica=replica_with_watch, **story)
