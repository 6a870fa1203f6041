"""The services and the ports they need, assembled: what every face holds.

`wire()` takes ports and returns the services; the composition root (`lastgood.bootstrap`) picks
the real adapters, tests pass fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lastgood.domain.deployments import Environment
from lastgood.domain.replay import ReplayLimits
from lastgood.domain.versions import NewVersion
from lastgood.ports import (
    ArtifactStore,
    Clock,
    CommandRunner,
    EvidenceSource,
    Host,
    KeyRing,
    ModelFormats,
    ModelImporter,
    ReadinessSource,
    RegistryMirror,
    Signatures,
    SmokeRunner,
    UnitOfWorkFactory,
    Verifier,
)
from lastgood.services.access import AccessService
from lastgood.services.archive import ArchiveService
from lastgood.services.audit import AuditService
from lastgood.services.deployments import DeploymentService
from lastgood.services.history import HistoryService
from lastgood.services.integrity import StandingChecks, StoredIntegrity
from lastgood.services.mlflow_follow import MlflowFollow
from lastgood.services.mlflow_mirror import MlflowMirror, NoOutsideRegistry
from lastgood.services.mlflow_sync import MlflowSync
from lastgood.services.mlflow_webhooks import MlflowWebhooks, Signer, unsigned_webhook
from lastgood.services.operations import EngineSettings, OperationEngine
from lastgood.services.preflight import (
    Check,
    CustomCommandCheck,
    DataContractCheck,
    IntegrityCheck,
    ReplayCheck,
    ResourceCheck,
    RuntimeCheck,
    SignatureCheck,
    SmokeCheck,
)
from lastgood.services.quarantine import QuarantineService
from lastgood.services.registry import RegisterRequest, RegistryService
from lastgood.services.replay import RegistryReplay
from lastgood.services.rollback_readiness import RegistryReadiness
from lastgood.services.signing import NoKeyRing, SigningService


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
    keyring: KeyRing = field(default_factory=NoKeyRing)
    readiness: ReadinessSource | None = None  # None: replica evidence from the registry
    replay_limits: ReplayLimits = field(default_factory=ReplayLimits)
    importer: ModelImporter = field(default_factory=NoOutsideRegistry)
    mirror: RegistryMirror = field(default_factory=NoOutsideRegistry)
    tracking_uri: str = ""  # the MLflow tracking server importer and mirror talk to
    webhook_signer: Signer = unsigned_webhook
    mlflow_webhook_secret: str = ""  # MLflow webhooks are refused without it


@dataclass(frozen=True, slots=True)
class Services:
    """The use cases, ready to call from any face."""

    ports: Ports
    registry: RegistryService
    deployments: DeploymentService
    archives: ArchiveService
    audit: AuditService
    engine: OperationEngine
    access: AccessService
    signing: SigningService
    mlflow_sync: MlflowSync
    mlflow_mirror: MlflowMirror
    mlflow_follow: MlflowFollow
    mlflow_webhooks: MlflowWebhooks
    quarantine: QuarantineService
    history: HistoryService


def readiness_of(ports: Ports) -> ReadinessSource:
    """Where the smoke check and a confirmed plan read the replicas' readiness evidence."""
    return ports.readiness or RegistryReadiness(
        uow=ports.uow, clock=ports.clock, stale_s=ports.engine_settings.replica_stale_s)


def checks_factory(ports: Ports,
                   readiness: ReadinessSource) -> Callable[[Environment], Sequence[Check]]:
    """The preflight checks for an environment: built-ins, then the team's own."""

    replay = RegistryReplay(uow=ports.uow, clock=ports.clock, limits=ports.replay_limits,
                            stale_s=ports.engine_settings.replica_stale_s)

    def checks_for(env: Environment) -> Sequence[Check]:
        built_in: list[Check] = [IntegrityCheck(ports.store), RuntimeCheck(), ResourceCheck(),
                                 DataContractCheck(), SignatureCheck(ports.signatures),
                                 SmokeCheck(ports.smoke, enabled=ports.smoke_enabled,
                                            readiness=readiness), ReplayCheck(replay)]
        custom = [CustomCommandCheck(spec, ports.commands, ports.store.url) for spec in env.checks]
        return [*built_in, *custom]

    return checks_for


def standing_checks(ports: Ports) -> StandingChecks:
    """The checks `status` runs on the first rollback target at every look (no smoke test, no
    team commands: the replicas' evidence and a real preflight stand for those)."""
    return StandingChecks(uow=ports.uow, host=ports.host,
                          integrity=StoredIntegrity(store=ports.store, clock=ports.clock),
                          checks=[RuntimeCheck(), ResourceCheck(), DataContractCheck(),
                                  SignatureCheck(ports.signatures)])


def wire(ports: Ports) -> Services:
    """Build every service over the given ports."""
    readiness = readiness_of(ports)
    engine = OperationEngine(uow=ports.uow, store=ports.store, clock=ports.clock, host=ports.host,
                             checks_for=checks_factory(ports, readiness), readiness=readiness,
                             commands=ports.commands,
                             verifier=ports.verifier, evidence=ports.evidence,
                             settings=ports.engine_settings)
    signing = SigningService(uow=ports.uow, keyring=ports.keyring,
                             signatures=ports.signatures, clock=ports.clock)

    def seal(new: NewVersion, req: RegisterRequest) -> NewVersion:
        return signing.seal(new, sign_with=req.sign_with, signature=req.signature,
                            signed_by=req.signed_by)

    registry = RegistryService(uow=ports.uow, store=ports.store, formats=ports.formats,
                               host=ports.host, clock=ports.clock, smoke=ports.smoke,
                               record_outputs=ports.smoke_enabled, seal=seal)
    mirror = MlflowMirror(uow=ports.uow, mirror=ports.mirror, clock=ports.clock)
    deployments = DeploymentService(uow=ports.uow, engine=engine, clock=ports.clock,
                                    after_change=mirror.after_change,
                                    checks_now=standing_checks(ports).failing,
                                    stale_s=ports.engine_settings.replica_stale_s)
    mlflow_sync = MlflowSync(registry=registry, importer=ports.importer, uow=ports.uow,
                             tracking_uri=ports.tracking_uri)
    follow = MlflowFollow(uow=ports.uow, port=ports.mirror, mirror=mirror, sync=mlflow_sync,
                          deployments=deployments, clock=ports.clock)
    return Services(
        ports=ports,
        registry=registry,
        deployments=deployments,
        archives=ArchiveService(uow=ports.uow, store=ports.store),
        audit=AuditService(uow=ports.uow),
        engine=engine,
        access=AccessService(uow=ports.uow, clock=ports.clock),
        signing=signing,
        mlflow_sync=mlflow_sync,
        mlflow_mirror=mirror,
        mlflow_follow=follow,
        mlflow_webhooks=MlflowWebhooks(uow=ports.uow, follow=follow, clock=ports.clock,
                                       sign=ports.webhook_signer,
                                       secret=ports.mlflow_webhook_secret),
        quarantine=QuarantineService(uow=ports.uow, clock=ports.clock),
        history=HistoryService(uow=ports.uow, clock=ports.clock),
    )
