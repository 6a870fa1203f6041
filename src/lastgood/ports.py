"""The small interfaces services depend on. Each has a real adapter and an in-memory fake.

Only protocols live here; the records they pass are the domain's.

Repositories are reached through a UnitOfWork: one transaction per use case, so a pointer move and
its audit event commit together (safety rule 3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol, Self

from lastgood.domain.access import ApiToken, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import Event, EventDraft
from lastgood.domain.compatibility import HostFacts
from lastgood.domain.decisions import Notice
from lastgood.domain.deployments import (
    Deployment,
    DeploymentEnd,
    Environment,
    ReplicaReport,
    VerifiedRecord,
)
from lastgood.domain.flavors import Inspection
from lastgood.domain.health import LiveCheck
from lastgood.domain.measurements import LiveWindow
from lastgood.domain.operations import CommandResult, Operation, SmokeOutcome
from lastgood.domain.outside import OutsideVersion
from lastgood.domain.readiness import ReadinessVerdict
from lastgood.domain.versions import Blob, Model, NewVersion, Version, VersionStatus

Progress = Callable[[int], None]
"""Called with the number of bytes just processed (hashing, uploading)."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


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


class KeyRing(Protocol):
    """Private signing keys kept by the user who signs (never in the registry)."""

    def create(self, name: str) -> str:
        """Make a new key pair; keep the private half; return the public key (base64)."""
        ...

    def discard(self, name: str) -> None:
        """Forget the private key `name` (one whose public half was refused); no error if absent."""
        ...

    def public_key(self, name: str) -> str:
        """The public key (base64) of a private key kept here; raises NotFound."""
        ...

    def sign(self, name: str, message: bytes) -> str:
        """The signature (base64) of `message` with the private key `name`; raises NotFound."""
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


class ArtifactStore(Protocol):
    def put(self, source: BinaryIO, *, progress: Progress | None = None) -> Blob:
        """Store bytes under their sha256 (write to temp, fsync, atomic rename); dedupes."""
        ...

    def read(self, sha256: str) -> bytes:
        """The bytes, verified; IntegrityError on mismatch, NotFound when absent."""
        ...

    def fetch(self, sha256: str, dest: Path) -> None:
        """Write the verified bytes to a local file (for loading large models)."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether bytes with that digest are stored."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove bytes (only ever those no version refers to)."""
        ...

    def url(self, sha256: str) -> str:
        """Where the bytes live, for deploy commands run by the team."""
        ...


class ModelFormats(Protocol):
    def inspect(self, path: Path, *, flavor: str | None, allow_pickle: bool) -> Inspection:
        """Validate the artifact and read what it says about itself.

        Raises InvalidInput for an empty, truncated or mismatched file and UnsafeFormat for
        pickle/joblib without `allow_pickle`.
        """
        ...

    def load(self, version: Version, directory: Path) -> Predictor:
        """Load a version whose files were fetched into `directory`."""
        ...


class Predictor(Protocol):
    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One output per input record."""
        ...


class Host(Protocol):
    def facts(self) -> HostFacts:
        """Python, installed packages and free resources of the serving host."""
        ...


class CommandRunner(Protocol):
    def run(self, command: str, *, env: Mapping[str, str], timeout_s: float) -> CommandResult:
        """Run a shell command with extra environment variables; never raises for its exit code."""
        ...

    def call(self, entry_point: str, payload: Mapping[str, Any], *,
             timeout_s: float) -> CommandResult:
        """Call a `module:function` entry point with the payload; truthy return = exit code 0."""
        ...


class SmokeRunner(Protocol):
    def smoke(self, version: Version, *, timeout_s: float) -> SmokeOutcome:
        """Load `version` in a separate process and run its golden examples there."""
        ...

    def smoke_many(self, versions: Sequence[Version], *, timeout_s: float
                   ) -> list[SmokeOutcome]:
        """`smoke` for each version (one outcome each, in order), sharing separate processes
        between them; `timeout_s` is each version's limit, and one that fails fails alone."""
        ...


class ReadinessSource(Protocol):
    def judge(self, target: Version, env: str) -> ReadinessVerdict:
        """What the readiness evidence of every live replica of `env` says about `target`
        (proofs naming another digest are ignored and audited)."""
        ...


class Signatures(Protocol):
    def verify(self, version: Version, trusted_keys: Sequence[str]) -> str | None:
        """None if `version.signature` is a valid signature of its digest by a trusted key,
        else the reason it is not."""
        ...


class Verifier(Protocol):
    def verify_live(self, model: str, env: str, version: int,
                    baseline: Mapping[str, float]) -> LiveCheck:
        """Compare the live version with its own pre-failure baseline."""
        ...


class EvidenceSource(Protocol):
    def samples(self, model: str, env: str, version: int) -> Mapping[str, Any]:
        """Sampled requests, responses, errors and counters of a version, for the archive."""
        ...


class MetricSource(Protocol):
    """Live measurements of served versions: the gateway's own counters, or Prometheus."""

    def window(self, model: str, env: str, version: int, *, since: datetime) -> LiveWindow:
        """What `version` did from `since` until now, as one cumulative window.

        Never raises: a source that is down or answers garbage says so in
        `LiveWindow.problems` (the assessment makes that INCONCLUSIVE, never a rollback); a
        window that could only start later than `since` says so in `started_at`.
        """
        ...

    def signals(self) -> frozenset[str]:
        """The signals it can provide ("error_rate", "latency", "accuracy", "drift",
        "custom.<name>"), so a policy naming any other is refused at load time."""
        ...

    def describe(self) -> str:
        """Where it reads from, for logs and evidence (e.g. "prometheus http://…")."""
        ...


class Notifier(Protocol):
    def notify(self, notice: Notice) -> None:
        """Deliver the notice; never raises (a failed delivery is logged, the watch goes on)."""
        ...


# -- outside model registries (MLflow) ----------------------------------------------------------

class ModelImporter(Protocol):
    """Reads an outside registry: what a URI names, which versions exist, their bytes."""

    def resolve(self, uri: str) -> OutsideVersion:
        """The version a URI names (`models:/m/3`, `models:/m@alias`, `runs:/RUN/path`), with
        its run's metrics and its tags; NotFound names what exists."""
        ...

    def versions(self, model: str) -> list[OutsideVersion]:
        """Every version of an outside model, oldest first (without metrics: `resolve` adds
        them); NotFound for an unknown model."""
        ...

    def models(self) -> list[str]:
        """Every outside model name."""
        ...

    def with_metrics(self, found: OutsideVersion) -> OutsideVersion:
        """The version with its run's metrics (one call; `versions` leaves them out)."""
        ...

    def download(self, found: OutsideVersion, dest: Path) -> Path:
        """Download the version's model directory below `dest`; return the directory."""
        ...


class RegistryMirror(Protocol):
    """Writes to an outside registry what lastgood knows: which version is live, verified,
    quarantined. Raises TransientError while the registry is unreachable."""

    def alias(self, model: str, alias: str) -> str | None:
        """The version an alias points at, None when the alias is not set."""
        ...

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point `alias` at `version`."""
        ...

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        """Set these tags on a version (others are left alone)."""
        ...
