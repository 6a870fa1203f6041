"""The small interfaces services depend on. Each has a real adapter and an in-memory fake.

Only protocols live here; the records they pass are the domain's.

The registry's repositories (`lastgood.ports.registry`) are reached through a UnitOfWork: one
transaction per use case, so a pointer move and its audit event commit together (safety rule 3).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from lastgood.domain.compatibility import HostFacts
from lastgood.domain.decisions import Notice
from lastgood.domain.flavors import Inspection
from lastgood.domain.health import LiveCheck
from lastgood.domain.measurements import LiveWindow
from lastgood.domain.operations import CommandResult, SmokeOutcome
from lastgood.domain.outside import OutsideVersion
from lastgood.domain.readiness_evidence import ReadinessVerdict
from lastgood.domain.replay import ReplayJudgement
from lastgood.domain.versions import Blob, Version
from lastgood.ports.registry import (
    ArchiveRepository,
    DeploymentRepository,
    EnvironmentRepository,
    EventLog,
    HistoryRepository,
    KeyRepository,
    LeaseRepository,
    ModelRepository,
    OperationRepository,
    ReplicaRepository,
    TokenRepository,
    UnitOfWork,
    UnitOfWorkFactory,
    VersionRepository,
)

__all__ = [
    "ArchiveRepository",
    "ArtifactStore",
    "ChangeAnnouncer",
    "ChangeSignal",
    "Clock",
    "CommandRunner",
    "DeploymentRepository",
    "EnvironmentRepository",
    "EventLog",
    "EvidenceSource",
    "HistoryRepository",
    "Host",
    "KeyRepository",
    "KeyRing",
    "LeaseRepository",
    "MetricSource",
    "ModelFormats",
    "ModelImporter",
    "ModelRepository",
    "Notifier",
    "OperationRepository",
    "Predictor",
    "Processes",
    "Progress",
    "ReadinessSource",
    "RegistryMirror",
    "ReplaySource",
    "ReplicaRepository",
    "Signatures",
    "SmokeRunner",
    "SmokeSession",
    "TokenRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "Verifier",
    "VersionRepository",
]

Progress = Callable[[int], None]
"""Called with the number of bytes just processed (hashing, uploading)."""


class Clock(Protocol):
    """The one source of time below the composition root: wall time, elapsed time, waiting."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines and intervals."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for `seconds` (a fake clock moves instead)."""
        ...


class ChangeSignal(Protocol):
    """What wakes a serving replica early when an environment's desired state may have changed.

    It only says "look again": the reconciler re-reads the whole desired state (level
    triggered), so a lost or duplicated signal costs at most one resync period or one read.
    """

    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        """True as soon as the desired state may differ from `generation` (the one the
        reconciler last acted on), False when `timeout_s` passes without a sign of change."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


class ChangeAnnouncer(Protocol):
    """The committing side of a change signal, for registries that cannot notify by themselves
    (SQLite): told right after a commit that changed environments' desired state."""

    def announce(self, envs: Collection[str]) -> None:
        """Wake the replicas of `envs` now. Best effort: quick, never raises; an announcement
        that is lost costs only latency, since every replica's change signal also polls."""
        ...


class Processes(Protocol):
    """Lease holders: who this process is, and whether another holder's process is gone."""

    def holder(self) -> str:
        """A new holder name for this process."""
        ...

    def is_dead(self, holder: str) -> bool:
        """True only when `holder` is known to have stopped (never a guess)."""
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

    def stamp(self, sha256: str) -> str:
        """A cheap token that changes whenever the stored bytes may have changed (size and
        modification time, or the object's ETag), without reading them; NotFound when absent.
        Lets a caller re-hash only what changed."""
        ...

    def publish(self, model_dir: Path, name: str) -> str:
        """Copy a model directory (already materialized and verified) to `models/<name>/`
        beside the store's blobs and return where it is: a local path, or a prefix URL
        (s3://bucket/prefix/models/<name>) a serving platform loads a model directory from.
        Versions never change, so publishing one again rewrites the same bytes."""
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

    def session(self, *, timeout_s: float) -> AbstractContextManager[SmokeSession]:
        """`smoke` for many versions through one separate process, kept for the block (started
        when the first version is handed over, ended with the block); `timeout_s` is each
        version's limit, and a version that fails fails alone."""
        ...


class SmokeSession(Protocol):
    """Versions handed to a smoke process in turn; their outcomes come back in that order."""

    def hand(self, version: Version) -> None:
        """Give the process `version`, to load after those handed before it; the caller goes
        on meanwhile."""
        ...

    def ready(self) -> bool:
        """Whether the outcome of the oldest version handed and not taken is in (`outcome`
        would not wait)."""
        ...

    def outcome(self) -> SmokeOutcome:
        """The outcome of the oldest version handed and not taken, waiting for it."""
        ...


class ReadinessSource(Protocol):
    def judge(self, target: Version, env: str) -> ReadinessVerdict:
        """What the readiness evidence of every live replica of `env` says about `target`
        (proofs naming another digest are ignored and audited)."""
        ...


class ReplaySource(Protocol):
    def judge(self, target: Version, env: str, *, forward: bool = False) -> ReplayJudgement:
        """What the replay of recent live requests on the standbys of every live replica of
        `env` says about `target` (failures, agreement with the live version, or no data);
        `forward`: `target` would be deployed, not rolled back to."""
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
