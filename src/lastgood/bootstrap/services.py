"""The services over real adapters: `open_services()` picks them from Settings (SQLite + a local
directory by default, PostgreSQL and S3 by URL); `open_control_plane()` is what the CLI talks to.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lastgood.config import Settings, load_settings

if TYPE_CHECKING:
    from lastgood.adapters.dbapi import DbRegistry
    from lastgood.domain.flavors import Inspection
    from lastgood.domain.versions import Version
    from lastgood.ports import ModelFormats, Predictor, UnitOfWorkFactory, Verifier
    from lastgood.services.container import Services
    from lastgood.services.faces import ControlPlane

__all__ = ["LazyFormats", "local_services", "open_committing_registry", "open_control_plane",
           "open_registry", "open_services", "open_verifier"]


def open_registry(url: str, *, announce: bool = False) -> DbRegistry:
    """The registry at `url`, its schema at head: the one registry adapter, over DB-API (the
    standard library's sqlite3 for SQLite, psycopg for PostgreSQL), so the CLI's short commands
    never import SQLAlchemy. When the database is new or behind, `lastgood.adapters.schema`
    (SQLAlchemy and Alembic) migrates it first. With `announce`, a SQLite registry wakes this
    host's replicas right after each commit that moved a desired state (PostgreSQL's NOTIFY
    goes with the commit itself)."""
    from lastgood.adapters.dbapi import open_dbapi_registry
    from lastgood.adapters.registry_rules import SCHEMA_REVISION

    announcer = None
    if announce:
        from lastgood.adapters.wakeups import announcer_for_url

        announcer = announcer_for_url(url)
    registry = open_dbapi_registry(url, announcer=announcer)
    if registry.revision() != SCHEMA_REVISION:
        from lastgood.adapters.schema import migrate

        with registry.connection() as conn:  # a database in memory lives in this one
            migrate(url, connection=conn if registry.in_memory else None)
    return registry


def open_services(settings: Settings | None = None) -> Services:
    """The real adapters chosen by Settings, wired into services."""
    from lastgood.adapters.artifacts.factory import open_artifact_store
    from lastgood.adapters.mlflow import MlflowRegistry
    from lastgood.adapters.mlflow.webhooks import mlflow_signature
    from lastgood.adapters.null import NoEvidence
    from lastgood.adapters.system.clock import SystemClock
    from lastgood.adapters.system.commands import SubprocessCommands
    from lastgood.adapters.system.drill import crash_drill
    from lastgood.adapters.system.host import LocalHost
    from lastgood.adapters.system.keys import Ed25519Signatures, FileKeyRing
    from lastgood.adapters.system.processes import LocalProcesses
    from lastgood.adapters.system.smoke import SubprocessSmoke
    from lastgood.domain.replay import ReplayLimits
    from lastgood.services.container import Ports, wire
    from lastgood.services.operations import EngineSettings
    from lastgood.services.rollback_readiness import NoReadiness

    settings = settings or load_settings()
    store = open_artifact_store(settings.store_url,
                                endpoint_url=settings.s3_endpoint_url or None)
    registry = open_committing_registry(settings.db_url)
    outside = MlflowRegistry(settings.mlflow_tracking_uri)  # imports mlflow on first use
    return wire(Ports(
        uow=registry, store=store, formats=LazyFormats(),
        host=LocalHost(), clock=SystemClock(), commands=SubprocessCommands(),
        smoke=SubprocessSmoke(store), signatures=Ed25519Signatures(registry),
        keyring=FileKeyRing(settings.home / "keys"), verifier=open_verifier(settings, registry),
        evidence=NoEvidence(), engine_settings=EngineSettings(
            lease_ttl_s=settings.lease_ttl_s, processes=LocalProcesses(),
            after_phase=crash_drill(settings.halt_after)),
        smoke_enabled=settings.smoke_test,
        readiness=None if settings.readiness_evidence else NoReadiness(),
        replay_limits=ReplayLimits(max_failures=settings.max_replay_failures,
                                   min_agreement=settings.min_replay_agreement),
        importer=outside, mirror=outside,
        tracking_uri=settings.mlflow_tracking_uri, webhook_signer=mlflow_signature,
        mlflow_webhook_secret=settings.mlflow_webhook_secret))


def open_committing_registry(db_url: str) -> UnitOfWorkFactory:
    """The registry at `db_url` for a process that may change desired states: on a SQLite file
    every such commit wakes this host's replicas at once (PostgreSQL's NOTIFY does it in the
    transaction itself), where they would otherwise wait for their next poll."""
    return open_registry(db_url, announce=True)


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


def local_services(plane: ControlPlane) -> Services | None:
    """The local services behind `plane`; None for a remote control plane (LASTGOOD_URL)."""
    from lastgood.services.container import Services

    return plane if isinstance(plane, Services) else None
