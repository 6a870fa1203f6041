"""The root's `World` (lastgood.cli.hooks): what the CLI is given, each piece imported on first
use so that `lastgood --help` imports nothing here but this module."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood.config import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from lastgood.cli.hooks import MetricRequest, ServeRequest, ServerOptions
    from lastgood.domain.health import HealthPolicy
    from lastgood.ports import MetricSource
    from lastgood.services.container import Services
    from lastgood.services.faces import ControlPlane
    from lastgood.services.watch_setup import BuiltWatch, WatchOptions


class RootWorld:
    """The installed `lastgood`'s world: real adapters, chosen by Settings."""

    def open(self, settings: Settings) -> ControlPlane:
        from lastgood.bootstrap.services import open_control_plane

        return open_control_plane(settings)

    def local(self, plane: ControlPlane) -> Services | None:
        from lastgood.bootstrap.services import local_services

        return local_services(plane)

    def run_server(self, settings: Settings, options: ServerOptions) -> None:
        from lastgood.bootstrap.processes import run_server

        run_server(settings, options)

    def serve(self, settings: Settings, services: Services, request: ServeRequest) -> None:
        if request.engine == "ray":
            from lastgood.bootstrap.ray_serve import RayRequest, serve_ray

            serve_ray(settings, RayRequest(env=request.env, host=request.host,
                                           port=request.port, replicas=request.workers,
                                           min_replicas=request.min_replicas,
                                           options=request.options,
                                           address=request.ray_address))
            return
        from lastgood.bootstrap.serving import serve_env

        serve_env(settings, services, request)

    def metric_source(self, settings: Settings, services: Services,
                      request: MetricRequest) -> MetricSource:
        from lastgood.bootstrap.watch import metric_source

        return metric_source(settings, services, request)

    def build_watch(self, services: Services, source: MetricSource,
                    options: WatchOptions) -> BuiltWatch:
        from lastgood.bootstrap.watch import build_watch

        return build_watch(services, source, options)

    def policies(self, path: Path, *, kind: str) -> tuple[HealthPolicy, ...]:
        from lastgood.bootstrap.watch import policies

        return policies(path, kind=kind)

    def signals(self, kind: str) -> frozenset[str]:
        from lastgood.bootstrap.watch import signals_of

        return signals_of(kind)

    def attach_watch(self, app: Starlette, services: Services, options: WatchOptions, *,
                     on_built: Callable[[BuiltWatch], None] | None = None) -> Starlette:
        from lastgood.bootstrap.watch import attach_watch

        return attach_watch(app, services, options, on_built=on_built)

    def demo_replica(self, services: Services, *, env: str, cache_dir: Path,
                     options: WatchOptions) -> AbstractContextManager[str]:
        from lastgood.bootstrap.demo import replica_with_watch

        return replica_with_watch(services, env=env, cache_dir=cache_dir, options=options)
