"""Fakes and builders for tests of services and faces: a settable clock and valid domain records.

The in-memory registry itself lives in `lastgood.testing.memory` (MemoryRegistry), a smoke
session without a process in `lastgood.testing.smoke` (InlineSession); this module re-exports
them so a test needs one import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.domain.deployments import Environment, VerifiedRecord
from lastgood.domain.operations import Operation, OperationKind, Phase
from lastgood.domain.versions import (
    ArtifactFile,
    Column,
    GoldenExample,
    Manifest,
    NewVersion,
    Runtime,
    Schema,
)
from lastgood.testing.memory import MemoryRegistry, MemoryUnitOfWork, memory_uow_factory
from lastgood.testing.smoke import InlineSession

__all__ = [
    "EPOCH",
    "FixedClock",
    "InlineSession",
    "MemoryRegistry",
    "MemoryUnitOfWork",
    "RecordingAnnouncer",
    "make_environment",
    "make_manifest",
    "make_new_version",
    "make_operation",
    "make_verified_record",
    "memory_uow_factory",
]

EPOCH = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
"""The default start of a FixedClock: a fixed, timezone-aware UTC instant."""


class RecordingAnnouncer:
    """A ChangeAnnouncer that keeps what it was told: one list of environments per commit."""

    def __init__(self) -> None:
        self.announced: list[list[str]] = []

    def announce(self, envs: Collection[str]) -> None:
        self.announced.append(sorted(envs))


class FixedClock:
    """A Clock that only moves when a test says so."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self._now = self._checked(start)

    def now(self) -> datetime:
        """The current fake time, timezone-aware UTC."""
        return self._now

    def monotonic(self) -> float:
        """The fake time as seconds: moves only with the clock."""
        return self._now.timestamp()

    def sleep(self, seconds: float) -> None:
        """Waiting costs no real time: the clock moves forward by `seconds`."""
        self.advance(seconds)

    def set(self, at: datetime) -> datetime:
        """Jump to `at` (timezone-aware)."""
        self._now = self._checked(at)
        return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move forward by `seconds` plus any timedelta keywords (minutes=5, hours=1)."""
        self._now = self._now + timedelta(seconds=seconds, **delta)
        return self._now

    @staticmethod
    def _checked(at: datetime) -> datetime:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime (e.g. tzinfo=UTC)")
        return at.astimezone(UTC)


def fake_sha256(seed: str) -> str:
    """A well-formed sha256 hex digest derived from `seed` (no bytes need to exist)."""
    return hashlib.sha256(seed.encode()).hexdigest()


def make_manifest(*files: tuple[str, bytes], seed: str = "model") -> Manifest:
    """A manifest over (path, content) pairs; one 'model.bin' derived from `seed` by default."""
    pairs = files or (("model.bin", f"weights of {seed}".encode()),)
    return Manifest(files=tuple(
        ArtifactFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        for path, data in pairs
    ))


DEFAULT_SCHEMA = Schema(
    inputs=(Column("amount", "float64"), Column("country", "string")),
    outputs=(Column("score", "float64"),),
)


def make_new_version(
    model: str = "fraud-detector",
    *,
    tag: str | None = None,
    seed: str | None = None,
    flavor: str = "sklearn",
    manifest: Manifest | None = None,
    runtime: Runtime | None = None,
    schema: Schema | None = None,
    golden: tuple[GoldenExample, ...] = (),
    metrics: Mapping[str, float] | None = None,
    provenance: Mapping[str, str] | None = None,
    labels: tuple[str, ...] = (),
    unsafe_format: bool = False,
    signature: str | None = None,
    signed_by: str | None = None,
) -> NewVersion:
    """A valid NewVersion; distinct `seed`s (default: model and tag) give distinct manifests."""
    return NewVersion(
        model=model,
        manifest=manifest or make_manifest(seed=seed or f"{model}:{tag}"),
        flavor=flavor,
        runtime=runtime or Runtime(python="3.11", packages={"scikit-learn": "1.5.0"}),
        schema=DEFAULT_SCHEMA if schema is None else schema,
        golden=golden,
        metrics={"accuracy": 0.93} if metrics is None else metrics,
        provenance={"git_sha": "0" * 40} if provenance is None else provenance,
        labels=labels,
        tag=tag,
        unsafe_format=unsafe_format,
        signature=signature,
        signed_by=signed_by,
    )


def make_environment(name: str = "production", **settings: Any) -> Environment:
    """An Environment with default settings, overridden by keyword."""
    return Environment(name=name, **settings)


def make_verified_record(
    *,
    at: datetime = EPOCH,
    baseline: Mapping[str, float] | None = None,
    window_s: float = 3600.0,
    approver: str = "tester",
    reason: str = "baseline measured",
) -> VerifiedRecord:
    """A VerifiedRecord whose window ends at `at`."""
    return VerifiedRecord(
        baseline={"error_rate": 0.01, "latency_p99_ms": 40.0} if baseline is None else baseline,
        window_start=at - timedelta(seconds=window_s),
        window_end=at,
        approver=approver,
        at=at,
        reason=reason,
    )


def make_operation(
    op_id: str = "op-1",
    *,
    kind: OperationKind = OperationKind.ROLLBACK,
    model: str = "fraud-detector",
    env: str = "production",
    phase: Phase = Phase.PLANNED,
    at: datetime = EPOCH,
    actor: str = "tester",
    reason: str = "error rate up",
    **fields: Any,
) -> Operation:
    """An Operation in `phase`, created and updated at `at`; other fields by keyword."""
    return Operation(id=op_id, kind=kind, model=model, env=env, phase=phase, actor=actor,
                     reason=reason, created_at=at, updated_at=at, **fields)
