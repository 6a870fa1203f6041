"""The composition root: the only module that wires real adapters into services.

`open_services()` picks the adapters from Settings (SQLite + local directory by default,
PostgreSQL and S3 by URL); `main()` is the `lastgood` console script.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastgood.config import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lastgood.cli.hooks import ServerOptions
    from lastgood.domain.flavors import Inspection
    from lastgood.domain.versions import Version
    from lastgood.ports import ModelFormats, Predictor, UnitOfWorkFactory, Verifier
    from lastgood.services.container import Ports, Services, wire
    from lastgood.services.faces import ControlPlane

__all__ = ["Ports", "Services", "build_control_plane", "main", "open_control_plane",
           "open_services", "open_verifier", "run_server", "wire"]


def __getattr__(name: str) -> Any:
    """`Ports`, `Services` and `wire` on first use: `lastgood --help` never wires anything."""
    if name in ("Ports", "Services", "wire"):
        from lastgood.services import container

        return getattr(container, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_services(settings: Settings | None = None) -> Services:
    """The real adapters chosen by Settings, wired into services."""
    from lastgood.adapters.artifacts.factory import open_artifact_store
    from lastgood.adapters.mlflow import MlflowRegistry
    from lastgood.adapters.mlflow.webhooks import mlflow_signature
    from lastgood.adapters.null import NoEvidence
    from lastgood.adapters.sql.registry import open_registry
    from lastgood.adapters.system.clock import SystemClock
    from lastgood.adapters.system.commands import SubprocessCommands
    from lastgood.adapters.system.host import LocalHost
    from lastgood.adapters.system.keys import Ed25519Signatures, FileKeyRing
    from lastgood.adapters.system.smoke import SubprocessSmoke
    from lastgood.domain.operations import Phase
    from lastgood.services.container import Ports, wire
    from lastgood.services.operations import EngineSettings
    from lastgood.services.readiness import NoReadiness

    settings = settings or load_settings()
    store = open_artifact_store(settings.store_url,
                                endpoint_url=settings.s3_endpoint_url or None)
    registry = open_registry(settings.db_url)
    outside = MlflowRegistry(settings.mlflow_tracking_uri)  # imports mlflow on first use
    return wire(Ports(
        uow=registry, store=store, formats=LazyFormats(),
        host=LocalHost(), clock=SystemClock(), commands=SubprocessCommands(),
        smoke=SubprocessSmoke(store), signatures=Ed25519Signatures(registry),
        keyring=FileKeyRing(settings.home / "keys"), verifier=open_verifier(settings, registry),
        evidence=NoEvidence(), engine_settings=EngineSettings(
            lease_ttl_s=settings.lease_ttl_s,
            halt_after=Phase(settings.halt_after) if settings.halt_after else None),
        smoke_enabled=settings.smoke_test,
        readiness=None if settings.readiness_evidence else NoReadiness(),
        importer=outside, mirror=outside,
        tracking_uri=settings.mlflow_tracking_uri, webhook_signer=mlflow_signature,
        mlflow_webhook_secret=settings.mlflow_webhook_secret))


class LazyFormats:
    """The local model formats, imported on first use: `lastgood status` and `rollback` never
    inspect or load a model here, and the formats pull in numpy, onnxruntime and friends."""

    def __init__(self) -> None:
        self._formats: ModelFormats | None = None

    def _real(self) -> ModelFormats:
        if self._formats is None:
            from lastgood.adapters.formats import LocalModelFormats

            self._formats = LocalModelFormats()
        return self._formats

    def inspect(self, path: Path, *, flavor: str | None, allow_pickle: bool) -> Inspection:
        return self._real().inspect(path, flavor=flavor, allow_pickle=allow_pickle)

    def load(self, version: Version, directory: Path) -> Predictor:
        return self._real().load(version, directory)


def open_verifier(settings: Settings, uow: UnitOfWorkFactory) -> Verifier:
    """The live verifier over the configured metric source (LASTGOOD_GATEWAY_URLS or
    LASTGOOD_PROMETHEUS_URL) with the default policy; without one, verification is SKIPPED and
    the watch verifies later."""
    from lastgood.adapters.null import NoVerifier

    if not (settings.gateway_urls or settings.prometheus_url):
        return NoVerifier()
    from lastgood.adapters.metrics import open_metric_source
    from lastgood.adapters.system.clock import SystemClock
    from lastgood.services.live_verifier import LiveVerifier
    from lastgood.services.policies import PolicyBook

    clock = SystemClock()
    source = open_metric_source("gateway" if settings.gateway_urls else "prometheus",
                                clock=clock, gateway_urls=settings.gateway_urls,
                                prometheus_url=settings.prometheus_url)
    return LiveVerifier(uow=uow, source=source, clock=clock,
                        policies=PolicyBook((), available=source.signals()))


def open_control_plane(settings: Settings) -> ControlPlane:
    """What the CLI talks to: the control plane at LASTGOOD_URL, else the local services."""
    if settings.remote_url:
        from lastgood.adapters.system.keys import FileKeyRing
        from lastgood.remote.client import RemoteControlPlane

        return RemoteControlPlane(settings.remote_url, settings.remote_token,
                                  keyring=FileKeyRing(settings.home / "keys"))
    return open_services(settings)


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

    services = open_services(settings)
    if options.sync_mlflow_s:
        from lastgood.services.mlflow_loop import start_background

        start_background(services.mlflow_sync, services.mlflow_follow, services.mlflow_mirror,
                         every_s=options.sync_mlflow_s, actor=settings.actor)
    apps: list[tuple[Any, str, int]] = []
    live_stats = None
    if options.with_serving:
        replica = _serving_app(settings, services, options.with_serving, options.serving_port,
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


def _serving_app(settings: Settings, services: Services, env: str, port: int, *,
                 host: str = "127.0.0.1") -> Any:
    from lastgood.serving.loaders import ArtifactLoader
    from lastgood.serving.server import (
        advertised_url,
        create_serving_app,
        default_replica_prefix,
        signal_for_url,
    )

    uow = services.ports.uow
    loader = ArtifactLoader(store=services.ports.store, formats=services.ports.formats,
                            cache_dir=settings.home / "cache")
    app = create_serving_app(env=env, uow_factory=uow, loader=loader,
                             replica_id=default_replica_prefix("", port),
                             signal=signal_for_url(settings.db_url)(uow, env),
                             url=advertised_url(host, port) if port else "")
    if settings.serve_token:
        from lastgood.serving.guard import require_token

        app = require_token(app, token=settings.serve_token)
    return app


def main() -> None:
    """The `lastgood` console script."""
    from lastgood.cli.main import build_cli

    build_cli(open_control_plane, server_runner=run_server)(prog_name="lastgood")
