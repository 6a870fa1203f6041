"""A lastgood replica inside Ray Serve: each Ray replica holds the warm slots of one environment,
follows the registry's desired state, reports to the registry as `ray:<app>/<replica>@<node>`,
proves its standbys, and answers every lastgood door through Ray's HTTP proxy.

A rollback is the same `lastgood rollback`: the registry's pointer moves and each Ray replica
switches in place (one reference assignment on its warm standby). Ray schedules, scales and
restarts replicas; a replica Ray starts later reads the registry's *current* desired state, so
it never comes up on the version the application was deployed with.

This module imports Ray: only `lastgood serve --engine ray` and Ray's own workers import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import uvicorn
from ray import serve
from starlette.types import ASGIApp, Receive, Scope, Send

from lastgood.config import Settings
from lastgood.serving.server import ServingOptions

__all__ = ["REPLICA", "LastgoodReplica", "RaySpec", "build_app"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RaySpec:
    """What every Ray replica of one environment is built from (pickled to Ray's workers)."""

    env: str
    settings: Settings
    options: ServingOptions = field(default_factory=ServingOptions)
    # A replica takes Ray traffic once its constructor returns: it first waits (this long at
    # most) until every deployed model has a warm live slot.
    ready_timeout_s: float = 120.0
    # Where each replica answers directly (the watch reads its counters there): None for the
    # node's address, as on a cluster; a local instance passes loopback.
    direct_host: str | None = None


class _WithoutLifespan:
    """The replica's app for Ray's proxy: the replica ran the app's lifespan itself (so that
    it is warm before Ray routes to it), so Ray's lifespan events are answered, not run."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _replica_identity() -> tuple[str, str]:
    """(replica id, node address) of the Ray replica running this code."""
    import ray

    context = serve.get_replica_context()
    node = str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    return f"ray:{context.app_name}/{context.replica_id.unique_id}@{node}", node


def _build(spec: RaySpec, replica_id: str, url: str) -> Any:
    """The serving app of this replica, wired as `lastgood serve` wires its workers."""
    from lastgood.adapters.artifacts.factory import open_artifact_store
    from lastgood.adapters.formats import LocalModelFormats
    from lastgood.adapters.system.clock import SystemClock
    from lastgood.adapters.system.host import packages_fingerprint
    from lastgood.adapters.wakeups.change_signals import signal_for_url
    from lastgood.bootstrap.services import open_registry
    from lastgood.bootstrap.serving import artifact_loader, guarded
    from lastgood.serving.server import create_serving_app

    settings = spec.settings
    options = replace(spec.options, reconciler=replace(spec.options.reconciler, readiness=replace(
        spec.options.reconciler.readiness, fingerprint=packages_fingerprint)))
    uow = open_registry(settings.db_url)
    store = partial(open_artifact_store, settings.store_url,
                    endpoint_url=settings.s3_endpoint_url or None)
    loader = artifact_loader(store, LocalModelFormats, settings.home / "cache")
    signal = signal_for_url(settings.db_url, poll_interval_s=options.poll_interval_s)(
        uow, spec.env)
    app = create_serving_app(env=spec.env, uow_factory=uow, loader=loader,
                             replica_id=replica_id, signal=signal, clock=SystemClock(),
                             options=options, url=url)
    wrap = guarded(settings, None)
    return app if wrap is None else wrap(app)


class LastgoodReplica:
    """One Ray replica = one lastgood replica of `spec.env`."""

    async def __init__(self, spec: RaySpec) -> None:  # type: ignore[misc]  # Ray awaits it
        from lastgood.serving.server import advertised_url, bind_socket

        logging.basicConfig(level=spec.options.log_level.upper())
        if spec.options.gil_switch_interval_s is not None:
            sys.setswitchinterval(spec.options.gil_switch_interval_s)
        replica_id, node = _replica_identity()
        # Its own address beside Ray's proxy: the watch reads each replica's counters there
        # (through the proxy it would read whichever replica a request reaches).
        host = spec.direct_host or node
        sock = bind_socket(host, 0, reuse_port=False)
        url = advertised_url(host, sock.getsockname()[1])
        self._app = _build(spec, replica_id, url)
        self._lifespan = self._app.router.lifespan_context(self._app)
        await self._lifespan.__aenter__()
        config = uvicorn.Config(self._app, lifespan="off", log_level="warning",
                                access_log=False, ws="none")
        self._direct = uvicorn.Server(config)
        self._direct_task = asyncio.create_task(self._direct.serve(sockets=[sock]))
        await self._until_warm(spec.ready_timeout_s)
        log.info("lastgood replica %s serving %s (direct %s)", replica_id, spec.env, url)

    async def _until_warm(self, timeout_s: float) -> None:
        """Return once every deployed model is warm; after `timeout_s`, return anyway: the
        replica then answers 503 with the reasons and reports them, as a plain one does."""
        state = self._app.state.serving
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while state.unready() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if state.unready():
            log.warning("not warm after %.0f s: %s", timeout_s, "; ".join(state.unready()))

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return _WithoutLifespan(self._app)

    async def check_health(self) -> None:
        """Ray's health check: the replica's loop and its registry follower are alive. A model
        that cannot be loaded is not a reason for Ray to restart the replica (it keeps serving
        what it has and reports the refusal), so readiness is not part of it."""
        if self._direct_task.done():
            raise RuntimeError("the replica's direct HTTP server stopped")

    async def __del__(self) -> None:
        self._direct.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._direct_task, 5)
        # stops the reconciler, which reports `stopped` to the registry
        await self._lifespan.__aexit__(None, None, None)


# The Ray Serve deployment: Ray pickles it to each worker and constructs a LastgoodReplica there.
REPLICA: Any = serve.deployment(name="lastgood", health_check_period_s=5,
                                health_check_timeout_s=10, graceful_shutdown_timeout_s=15,
                                max_ongoing_requests=256)(serve.ingress()(LastgoodReplica))


def build_app(args: dict[str, str]) -> Any:
    """An application builder for Ray's `serve run` / `serve deploy` config files:

        import_path: lastgood.bootstrap.ray_replica:build_app
        args: {env: production}

    Settings come from the LASTGOOD_* variables of the process that builds it (put them in the
    config's `runtime_env.env_vars`)."""
    from lastgood.config import load_settings

    env = args.get("env", "")
    if not env:
        raise ValueError("args.env is required: the lastgood environment to serve")
    return REPLICA.bind(RaySpec(env=env, settings=load_settings()))
