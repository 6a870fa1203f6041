"""The registry's ports: repositories, reached through a UnitOfWork (one transaction per use case,
so a pointer move and its audit event commit together, safety rule 3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from lastgood.domain.access import ApiToken, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import Event, EventDraft
from lastgood.domain.deployments import (
    Deployment,
    DeploymentEnd,
    Environment,
    ReplicaReport,
    VerifiedRecord,
)
from lastgood.domain.history import HistoryPoint, StoredPoint, Tier
from lastgood.domain.operations import Operation
from lastgood.domain.versions import Model, NewVersion, Version, VersionStatus


class ModelRepository(Protocol):
    def list(self) -> list[Model]:
        """Every model with its latest number and version count, by name."""
        ...

    def get(self, name: str) -> Model:
        """One model; raises NotFound naming the known models."""
        ...


class VersionRepository(Protocol):
    def add(self, new: NewVersion, *, at: datetime, actor: str) -> Version:
        """Store a new version under the next number of its model (created on first use).

        Numbers are consecutive per model and never reused, also across processes; raises
        AlreadyExists for a tag the model already uses.
        """
        ...

    def get(self, model: str, ref: int | str) -> Version:
        """A version by number or tag; raises NotFound with the fix."""
        ...

    def list(self, model: str, *, limit: int | None = None, offset: int = 0) -> list[Version]:
        """Versions of a model, newest first; raises NotFound for an unknown model."""
        ...

    def set_status(self, model: str, number: int, status: VersionStatus) -> Version:
        """Change only the status of a version (the record itself never changes)."""
        ...

    def referenced_blobs(self) -> set[str]:
        """Every sha256 any version's manifest refers to."""
        ...

    def with_digest(self, model: str, digest: str, *, key: str,
                    origin: str | None) -> Version | None:
        """The oldest version of `model` with content digest `digest` whose provenance[key]
        equals `origin` (any such version, when `origin` is None); None if there is none."""
        ...


class EventLog(Protocol):
    def append(self, draft: EventDraft, *, at: datetime) -> Event:
        """Seal the draft onto the chain's head inside the current transaction."""
        ...

    def list(self, *, model: str | None = None, env: str | None = None,
             after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events in chain order, optionally filtered."""
        ...

    def latest(self, *, actions: Sequence[str], model: str, env: str) -> Event | None:
        """The newest event of (model, env) whose action is one of `actions`."""
        ...

    def scan(self, *, batch: int = 1000) -> Iterator[Event]:
        """Every event in stored order, for verifying the chain."""
        ...

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last event, as recorded apart from the rows."""
        ...


class EnvironmentRepository(Protocol):
    def get(self, name: str) -> Environment:
        """An environment's settings; raises NotFound naming the known ones."""
        ...

    def put(self, env: Environment) -> Environment:
        """Create or replace an environment's settings."""
        ...

    def list(self) -> list[Environment]:
        """Every environment, by name."""
        ...


class DeploymentRepository(Protocol):
    def live(self, model: str, env: str) -> Deployment | None:
        """The deployment that is the desired state of (model, env), if any."""
        ...

    def history(self, model: str, env: str) -> list[Deployment]:
        """Every deployment of (model, env), newest first."""
        ...

    def start(self, *, model: str, env: str, version: int, at: datetime, actor: str,
              reason: str, operation_id: str | None) -> Deployment:
        """Record that (model, env) now serves `version`; the caller ends the previous one."""
        ...

    def end(self, deployment_id: int, *, at: datetime, end: DeploymentEnd, reason: str) -> None:
        """Close a live deployment."""
        ...

    def set_verified(self, deployment_id: int, record: VerifiedRecord) -> Deployment:
        """Attach the verified record (baseline evidence) to a deployment."""
        ...

    def get(self, deployment_id: int) -> Deployment:
        """One deployment by id."""
        ...

    def generation(self, env: str) -> int:
        """A counter that grows whenever the desired state of `env` changes (cheap to poll)."""
        ...

    def touch(self, env: str) -> None:
        """The desired state of `env` changed without a pointer move (a deploy's shadow
        standby came or went): grow its generation and wake the replicas, at commit."""
        ...


class OperationRepository(Protocol):
    def save(self, op: Operation) -> None:
        """Insert or update an operation (its phase and plan)."""
        ...

    def get(self, op_id: str) -> Operation:
        """One operation; raises NotFound."""
        ...

    def unfinished(self, *, model: str | None = None, env: str | None = None) -> list[Operation]:
        """Operations not in a terminal phase, oldest first."""
        ...

    def list(self, *, model: str | None = None, env: str | None = None,
             limit: int = 50) -> list[Operation]:
        """Operations newest first."""
        ...


class LeaseRepository(Protocol):
    def acquire(self, key: str, *, holder: str, now: datetime, ttl_s: float) -> None:
        """Take or renew the lease on `key`; raises OperationInProgress while another holds it.

        An expired lease is taken over, so a crashed holder never blocks forever.
        """
        ...

    def release(self, key: str, *, holder: str) -> None:
        """Give the lease up if `holder` has it."""
        ...


class ArchiveRepository(Protocol):
    def add(self, record: ArchiveRecord) -> None:
        """Remember a bundle; records are never changed or removed."""
        ...

    def get(self, archive_id: str) -> ArchiveRecord:
        """One bundle's record; raises NotFound."""
        ...

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ArchiveRecord]:
        """Bundles newest first."""
        ...


class ReplicaRepository(Protocol):
    def report(self, report: ReplicaReport) -> None:
        """Insert or replace the replica's report for (model, env)."""
        ...

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ReplicaReport]:
        """Latest report of every replica, optionally filtered."""
        ...


class HistoryRepository(Protocol):
    """Metric history: per-version bucket summaries (`lastgood.domain.history`)."""

    def add(self, points: Sequence[HistoryPoint]) -> None:
        """Store points in this transaction; more than MAX_BATCH at once raises InvalidInput."""
        ...

    def read(self, model: str, env: str, *, resolution_s: int, since_s: int, until_s: int,
             limit: int) -> list[StoredPoint]:
        """Points of (model, env) of one tier with since_s <= at_s < until_s, oldest first,
        their summaries in the compact stored form (a reading merges thousands of them); at
        most `limit` of them (the newest are the ones left out)."""
        ...

    def compact(self, retention: Sequence[Tier], *, now_s: int, batch: int) -> int:
        """Roll each tier's settled buckets up into the next tier (the finer points stay for
        their own keep) and drop points past their tier's keep, `batch` at most per tier.
        Returns how many points it rolled up or dropped. The caller holds COMPACT_LEASE."""
        ...


class TokenRepository(Protocol):
    def add(self, token: ApiToken) -> None:
        """Store a new token record (its hash, never the secret)."""
        ...

    def by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to `token_hash`, if any."""
        ...

    def get(self, token_id: str) -> ApiToken:
        """One token by id; raises NotFound."""
        ...

    def list(self) -> list[ApiToken]:
        """Every token, oldest first (revoked and expired ones included)."""
        ...

    def revoke(self, token_id: str, *, at: datetime) -> ApiToken:
        """Mark a token revoked from `at` on (revoking twice keeps the first time)."""
        ...


class KeyRepository(Protocol):
    def add(self, key: SigningKey) -> None:
        """Record a public key under its name; raises AlreadyExists for a taken name."""
        ...

    def get(self, name: str) -> SigningKey:
        """One key by name; raises NotFound naming the known keys."""
        ...

    def list(self) -> list[SigningKey]:
        """Every key, by name."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository (read-only attributes, so adapters may narrow)."""

    @property
    def models(self) -> ModelRepository: ...

    @property
    def versions(self) -> VersionRepository: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def environments(self) -> EnvironmentRepository: ...

    @property
    def deployments(self) -> DeploymentRepository: ...

    @property
    def operations(self) -> OperationRepository: ...

    @property
    def leases(self) -> LeaseRepository: ...

    @property
    def archives(self) -> ArchiveRepository: ...

    @property
    def replicas(self) -> ReplicaRepository: ...

    @property
    def tokens(self) -> TokenRepository: ...

    @property
    def history(self) -> HistoryRepository: ...

    @property
    def keys(self) -> KeyRepository: ...

    def __enter__(self) -> Self:
        """Begin a transaction."""
        ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Roll back whatever was not committed."""
        ...

    def commit(self) -> None:
        """Make every change of this transaction durable, all or nothing."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork:
        """A new unit of work (one transaction)."""
        ...
