"""The data plane's wiring: replicas over the registry, its store and formats, its change signal
(LISTEN/NOTIFY for PostgreSQL, a poll otherwise) and the one clock.

`serve_env` is `lastgood serve` (workers in their own processes, so everything they get is a
picklable builder); `serving_app` is one replica inside this process (`lastgood server
--with-serving`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastgood.config import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.applications import Starlette

    from lastgood.ports import ArtifactStore, ModelFormats
    from lastgood.services.container import Services
    from lastgood.services.watch_setup import WatchOptions
    from lastgood.serving.loading import Loader
    from lastgood.serving.server import ServingOptions

__all__ = ["ServeRequest", "artifact_loader", "serve", "serve_env", "serving_app"]


@dataclass(frozen=True, slots=True)
class ServeRequest:
    """`lastgood serve`: one environment's replicas, and the watch inside when asked."""

    env: str
    host: str
    port: int
    workers: int
    options: ServingOptions
    watch: WatchOptions | None = None
    engine: str = "process"  # process: lastgood's own workers; ray: a Ray Serve application
    ray_address: str | None = None  # with the ray engine: the cluster (None: a local one)
    min_replicas: int = 1  # with the ray engine: below `workers`, Ray autoscales between them


def serve(settings: Settings, services: Services, request: ServeRequest) -> None:
    """`lastgood serve` (blocking): lastgood's own worker processes, or a Ray Serve
    application with `engine="ray"`."""
    if request.engine == "ray":
        from lastgood.bootstrap.ray_serve import RayRequest, serve_ray

        serve_ray(settings, RayRequest(env=request.env, host=request.host, port=request.port,
                                       replicas=request.workers,
                                       min_replicas=request.min_replicas,
                                       options=request.options, address=request.ray_address))
        return
    serve_env(settings, services, request)

def serve_env(settings: Settings, services: Services, request: ServeRequest) -> None:
    """Serve `request.env` until SIGINT/SIGTERM: each worker opens its own registry connection
    and store; the watch runs inside the (single) replica when asked."""
    from lastgood.adapters.artifacts.factory import open_artifact_store
    from lastgood.adapters.formats import LocalModelFormats
    from lastgood.adapters.system.clock import SystemClock
    from lastgood.adapters.system.host import packages_fingerprint
    from lastgood.adapters.wakeups.change_signals import signal_for_url
    from lastgood.bootstrap.services import open_registry
    from lastgood.bootstrap.watch import attach_watch
    from lastgood.serving.server import serve

    options = request.options
    options = replace(options, reconciler=replace(options.reconciler, readiness=replace(
        options.reconciler.readiness, fingerprint=packages_fingerprint)))
    wrap = (partial(attach_watch, services=services, options=request.watch)
            if request.watch is not None else None)
    store = partial(open_artifact_store, settings.store_url,
                    endpoint_url=settings.s3_endpoint_url or None)
    serve(request.env, host=request.host, port=request.port, workers=request.workers,
          uow_factory_builder=partial(open_registry, settings.db_url),
          loader_builder=partial(artifact_loader, store, LocalModelFormats,
                                 settings.home / "cache"),
          signal_builder=signal_for_url(settings.db_url,
                                        poll_interval_s=options.poll_interval_s),
          clock=SystemClock(), options=options, wrap_app=guarded(settings, wrap))


def artifact_loader(store_builder: Callable[[], ArtifactStore],
                    formats_builder: Callable[[], ModelFormats], cache_dir: Path) -> Loader:
    """A worker's loader: files fetched from the store into `cache_dir`, loaded by format."""
    from lastgood.serving.loaders import ArtifactLoader

    return ArtifactLoader(store=store_builder(), formats=formats_builder(), cache_dir=cache_dir)


def guarded(settings: Settings, wrap: Callable[[Starlette], Starlette] | None,
            ) -> Callable[[Starlette], Starlette] | None:
    """`wrap`, behind the prediction API's own token when LASTGOOD_SERVE_TOKEN is set."""
    if not settings.serve_token:
        return wrap
    from lastgood.serving.guard import chain, require_token

    guard = partial(require_token, token=settings.serve_token)
    return partial(chain, wrappers=(guard, wrap) if wrap else (guard,))


def serving_app(settings: Settings, services: Services, env: str, port: int, *,
                host: str = "127.0.0.1") -> Any:
    """One replica of `env` in this process, over the services' registry and store."""
    from lastgood.adapters.wakeups.change_signals import signal_for_url
    from lastgood.serving.loaders import ArtifactLoader
    from lastgood.serving.server import (
        advertised_url,
        create_serving_app,
        default_replica_prefix,
    )

    uow = services.ports.uow
    loader = ArtifactLoader(store=services.ports.store, formats=services.ports.formats,
                            cache_dir=settings.home / "cache")
    app = create_serving_app(env=env, uow_factory=uow, loader=loader,
                             replica_id=default_replica_prefix("", port),
                             signal=signal_for_url(settings.db_url)(uow, env),
                             clock=services.ports.clock,
                             url=advertised_url(host, port) if port else "")
    wrap = guarded(settings, None)
    return app if wrap is None else wrap(app)
