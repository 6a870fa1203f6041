"""Environments, deployments (who served what, when, why) and verified records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from lastgood.domain.versions import Column


class DeploymentEnd(StrEnum):
    """How a deployment stopped being live."""

    SUPERSEDED = "superseded"  # a new deploy replaced it
    ROLLED_BACK = "rolled_back"  # it failed and a rollback replaced it
    ROLLED_FORWARD = "rolled_forward"  # it was a rollback target and a later deploy replaced it
    UNDEPLOYED = "undeployed"  # the env stopped serving the model


class RuntimeDrift(StrEnum):
    """How much package drift between a target's pins and the host a preflight tolerates."""

    EXACT = "exact"  # every pinned package must match exactly
    MINOR = "minor"  # same major.minor; patch releases may differ
    MAJOR = "major"  # same major release
    IGNORE = "ignore"  # report differences as warnings only


class SwitchMode(StrEnum):
    """Who moves traffic when the desired state changes."""

    SERVING = "serving"  # lastgood's own replicas follow the registry
    COMMAND = "command"  # a team's deploy command is run; its exit code decides


class MlflowMode(StrEnum):
    """How an environment relates to the MLflow alias of the same name (or `mlflow_alias`)."""

    OFF = "off"  # lastgood leaves MLflow alone
    MIRROR = "mirror"  # after every switch the alias points at the live version, with tags
    FOLLOW = "follow"  # mirror, and a person moving the alias in MLflow requests a deploy


@dataclass(frozen=True, slots=True)
class CustomCheck:
    """A team's own preflight gate: a shell command or a `module:function` entry point."""

    name: str
    command: str = ""
    entry_point: str = ""
    timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Environment:
    """Per-environment settings kept in the registry."""

    name: str
    feature_schema: tuple[Column, ...] | None = None
    expected_outputs: tuple[Column, ...] | None = None
    runtime_drift: RuntimeDrift = RuntimeDrift.MINOR
    switch_mode: SwitchMode = SwitchMode.SERVING
    deploy_command: str = ""
    checks: tuple[CustomCheck, ...] = ()
    require_signature: bool = False
    trusted_keys: tuple[str, ...] = ()
    switch_timeout_s: float = 30.0
    mlflow_alias: str = ""  # the MLflow alias this env mirrors; empty: the env's name
    mlflow_mode: MlflowMode = MlflowMode.OFF

    @property
    def alias(self) -> str:
        """The MLflow alias that stands for this environment."""
        return self.mlflow_alias or self.name


@dataclass(frozen=True, slots=True)
class VerifiedRecord:
    """Evidence that a deployment was good: measured baseline, window, approver, time."""

    baseline: Mapping[str, float]
    window_start: datetime
    window_end: datetime
    approver: str
    at: datetime
    reason: str = ""
    distribution: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One period in which an environment served one version of a model."""

    id: int
    model: str
    env: str
    version: int
    started_at: datetime
    deployed_by: str
    reason: str
    operation_id: str | None = None
    ended_at: datetime | None = None
    end: DeploymentEnd | None = None
    end_reason: str = ""
    verified: VerifiedRecord | None = None

    @property
    def is_live(self) -> bool:
        return self.ended_at is None

    @property
    def is_verified(self) -> bool:
        return self.verified is not None


def live_at(history: Sequence[Deployment], at: datetime) -> Deployment | None:
    """The deployment that was live at `at`, from a (model, env)'s history in any order."""
    return next((d for d in history
                 if d.started_at <= at and (d.ended_at is None or at < d.ended_at)), None)


def verified_by(history: Sequence[Deployment], at: datetime) -> Deployment | None:
    """The most recent deployment started by `at` whose verification was recorded by `at`:
    the rollback target lastgood would have chosen then."""
    known = [d for d in history
             if d.started_at <= at and d.verified is not None and d.verified.at <= at]
    return max(known, key=lambda d: (d.started_at, d.id), default=None)


class ReplicaState(StrEnum):
    """What a serving replica says it is doing for one model."""

    SERVING = "serving"  # answering with its live slot
    LOADING = "loading"  # loading a version (it may still serve the previous one)
    FAILED = "failed"  # nothing live: the version it should serve failed to load
    STOPPED = "stopped"  # shut down cleanly: no longer serves (its last word)


STALE_AFTER_S = 15.0
"""A replica reports every 5 s: three missed reports and it is taken for gone, by the rollback,
the status, the dashboard, the watch's metric source and the readiness verdict alike."""


class Liveness(StrEnum):
    """Whether a replica still counts, judged from its last report and the time now."""

    LIVE = "live"  # reported within the stale window and did not say it stopped
    STALE = "stale"  # silent for longer than the stale window: killed, hung or cut off
    GONE = "gone"  # said it stopped (a clean shutdown)


def liveness(report: ReplicaReport, *, now: datetime,
             stale_s: float = STALE_AFTER_S) -> Liveness:
    """The one definition of a live replica (see `Liveness`)."""
    if report.state == ReplicaState.STOPPED:
        return Liveness.GONE
    if (now - report.seen_at).total_seconds() > stale_s:
        return Liveness.STALE
    return Liveness.LIVE


def live_replicas(reports: Sequence[ReplicaReport], *, now: datetime,
                  stale_s: float = STALE_AFTER_S) -> list[ReplicaReport]:
    """The reports of the replicas that are live at `now`."""
    return [r for r in reports if liveness(r, now=now, stale_s=stale_s) is Liveness.LIVE]


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    """What one serving replica says it actually serves for a model in an environment."""

    replica_id: str
    model: str
    env: str
    version: int | None
    since: datetime
    seen_at: datetime
    state: ReplicaState = ReplicaState.SERVING
    detail: str = ""
    url: str = ""  # where the replica answers predictions ("" when it did not say)
    evidence: Mapping[str, Any] | None = None  # readiness evidence of its standbys, as JSON
