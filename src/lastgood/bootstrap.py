"""The composition root: the only module that wires adapters into services.

`wire()` takes ports and returns the services; `open_services()` picks the real adapters from
Settings (SQLite + local directory by default, PostgreSQL and S3 by URL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lastgood.config import Settings, load_settings
from lastgood.domain.deployments import Environment
from lastgood.ports import (
    ArtifactStore,
    Clock,
    CommandRunner,
    EvidenceSource,
    Host,
    ModelFormats,
    Signatures,
    SmokeRunner,
    UnitOfWorkFactory,
    Verifier,
)
from lastgood.services.archive import ArchiveService
from lastgood.services.audit import AuditService
from lastgood.services.deployments import DeploymentService
from lastgood.services.operations import EngineSettings, OperationEngine
from lastgood.services.preflight import (
    Check,
    CustomCommandCheck,
    DataContractCheck,
    IntegrityCheck,
    ResourceCheck,
    RuntimeCheck,
    SignatureCheck,
    SmokeCheck,
)
from lastgood.services.registry import RegistryService


@dataclass(frozen=True, slots=True)
class Ports:
    """Every outside dependency of the services."""

    uow: UnitOfWorkFactory
    store: ArtifactStore
    formats: ModelFormats
    host: Host
    clock: Clock
    commands: CommandRunner
    smoke: SmokeRunner
    signatures: Signatures
    verifier: Verifier
    evidence: EvidenceSource
    engine_settings: EngineSettings = field(default_factory=EngineSettings)
    smoke_enabled: bool = True


@dataclass(frozen=True, slots=True)
class Services:
    """The use cases, ready to call from any face."""

    ports: Ports
    registry: RegistryService
    deployments: DeploymentService
    archives: ArchiveService
    audit: AuditService
    engine: OperationEngine


def checks_factory(ports: Ports) -> Callable[[Environment], Sequence[Check]]:
    """The preflight checks for an environment: built-ins, then the team's own."""

    def checks_for(env: Environment) -> Sequence[Check]:
        built_in: list[Check] = [IntegrityCheck(ports.store), RuntimeCheck(), ResourceCheck(),
                                 DataContractCheck(), SignatureCheck(ports.signatures)]
        if ports.smoke_enabled:
            built_in.append(SmokeCheck(ports.smoke))
        custom = [CustomCommandCheck(spec, ports.commands, ports.store.url) for spec in env.checks]
        return [*built_in, *custom]

    return checks_for


def open_services(settings: Settings | None = None, *, smoke: bool = True) -> Services:
    """The real adapters chosen by Settings, wired into services."""
    from lastgood.adapters.artifacts.factory import open_artifact_store
    from lastgood.adapters.clock import SystemClock
    from lastgood.adapters.commands import SubprocessCommands
    from lastgood.adapters.formats import LocalModelFormats
    from lastgood.adapters.host import LocalHost
    from lastgood.adapters.null import NoEvidence, NoSignatures, NoVerifier
    from lastgood.adapters.smoke import SubprocessSmoke
    from lastgood.adapters.sql.registry import open_registry

    settings = settings or load_settings()
    store = open_artifact_store(settings.store_url,
                                endpoint_url=settings.s3_endpoint_url or None)
    return wire(Ports(
        uow=open_registry(settings.db_url), store=store, formats=LocalModelFormats(),
        host=LocalHost(), clock=SystemClock(), commands=SubprocessCommands(),
        smoke=SubprocessSmoke(store), signatures=NoSignatures(), verifier=NoVerifier(),
        evidence=NoEvidence(), engine_settings=EngineSettings(lease_ttl_s=settings.lease_ttl_s),
        smoke_enabled=smoke))


def main() -> None:
    """The `lastgood` console script."""
    from lastgood.cli.main import build_cli

    build_cli(lambda settings: open_services(settings))(prog_name="lastgood")


def wire(ports: Ports) -> Services:
    """Build every service over the given ports."""
    engine = OperationEngine(uow=ports.uow, store=ports.store, clock=ports.clock, host=ports.host,
                             checks_for=checks_factory(ports), commands=ports.commands,
                             verifier=ports.verifier, evidence=ports.evidence,
                             settings=ports.engine_settings)
    return Services(
        ports=ports,
        registry=RegistryService(uow=ports.uow, store=ports.store, formats=ports.formats,
                                 host=ports.host, clock=ports.clock),
        deployments=DeploymentService(uow=ports.uow, engine=engine, clock=ports.clock),
        archives=ArchiveService(uow=ports.uow, store=ports.store),
        audit=AuditService(uow=ports.uow),
        engine=engine,
    )
