"""Server processes: `lastgood server` (the control plane: API and dashboard, with a serving
replica beside it on --with-serving) and the app they serve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lastgood.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lastgood.services.container import Services

__all__ = ["ServerOptions", "build_control_plane", "registry_stats", "run_server"]


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Where `lastgood server` listens, and whether it also serves predictions."""

    host: str = "127.0.0.1"
    port: int = 8000
    with_serving: str | None = None  # an env: also run a serving replica for it
    serving_port: int = 8080
    announce: Callable[[str], None] | None = None  # told the URL once the server listens
    sync_mlflow_s: float | None = None  # also sync, follow and mirror MLflow every N seconds


def build_control_plane(services: Services, settings: Settings, *,
                        live_stats: Any = None) -> FastAPI:
    """The control-plane app with the dashboard mounted (when the package ships it)."""
    from lastgood.api import ApiOptions, create_app

    app = create_app(services, options=ApiOptions(
        max_body_bytes=settings.api_max_body_bytes,
        max_upload_bytes=settings.api_max_upload_bytes))
    try:
        from lastgood.dashboard import mount
    except ImportError:  # a build without the dashboard: the API alone
        return app
    mount(app, services, live_stats=live_stats)
    return app


def run_server(settings: Settings, options: ServerOptions) -> None:
    """`lastgood server`: the control plane, and a serving replica with --with-serving."""
    from lastgood.adapters.system.server_run import serve_apps
    from lastgood.bootstrap.services import open_services
    from lastgood.bootstrap.serving import serving_app

    services = open_services(settings)
    if options.sync_mlflow_s:
        from lastgood.services.mlflow_loop import start_background

        start_background(services.mlflow_sync, services.mlflow_follow, services.mlflow_mirror,
                         every_s=options.sync_mlflow_s, actor=settings.actor)
    apps: list[tuple[Any, str, int]] = []
    live_stats = None
    if options.with_serving:
        replica = serving_app(settings, services, options.with_serving, options.serving_port,
                              host=options.host)
        from lastgood.dashboard import serving_stats

        live_stats = serving_stats(replica.state.serving)
        apps.append((replica, options.host, options.serving_port))
    else:
        live_stats = registry_stats(services)
    control = build_control_plane(services, settings, live_stats=live_stats)
    serve_apps([(control, options.host, options.port), *apps], announce=options.announce)


def registry_stats(services: Services) -> Any:
    """The dashboard's live charts from every replica reporting to the registry (summed)."""
    from lastgood.adapters.metrics import registry_source
    from lastgood.dashboard import metric_source_stats
    from lastgood.domain.deployments import Deployment

    def live(model: str, env: str) -> Deployment | None:
        with services.ports.uow() as uow:
            return uow.deployments.live(model, env)

    return metric_source_stats(registry_source(services.ports.uow, clock=services.ports.clock),
                               live)
