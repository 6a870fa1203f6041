"""What a face (CLI, SDK) calls, as Protocols: met by the local services and by the remote client.

`ControlPlane` is the part of `Services` the CLI uses. `lastgood.remote.client` implements the
same methods over the HTTP API, so a command prints the same output whether it runs against the
embedded registry or a control plane at LASTGOOD_URL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from lastgood.domain.access import ApiToken, Role, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import ChainReport, Event
from lastgood.domain.deployments import Deployment, Environment
from lastgood.domain.history_view import HistoryView
from lastgood.domain.operations import Operation, RollbackCause
from lastgood.domain.versions import Model, Version
from lastgood.ports import Progress
from lastgood.services.access import IssuedToken
from lastgood.services.deployments import PhaseHook, RollbackPlan, Status
from lastgood.services.quarantine import Quarantine
from lastgood.services.registry import RegisterRequest, Registration


class RegistryFace(Protocol):
    def register(self, req: RegisterRequest, *, actor: str,
                 progress: Progress | None = None) -> Version:
        """Store the artifacts and record the next version."""
        ...

    def register_noted(self, req: RegisterRequest, *, actor: str,
                       progress: Progress | None = None) -> Registration:
        """`register`, with the notes made while registering."""
        ...

    def models(self) -> list[Model]:
        """Every model."""
        ...

    def versions(self, model: str, *, limit: int | None = None) -> list[Version]:
        """Versions of a model, newest first."""
        ...

    def show(self, model: str, ref: str | int) -> Version:
        """One version by number or tag."""
        ...

    def events(self, *, model: str | None = None, env: str | None = None,
               limit: int | None = None, after_seq: int = 0) -> list[Event]:
        """Audit events in chain order."""
        ...

    def retire(self, model: str, ref: str | int, *, reason: str, actor: str) -> Version:
        """Withdraw a version for good."""
        ...


class DeploymentsFace(Protocol):
    def environments(self) -> list[Environment]:
        """Every environment."""
        ...

    def environment(self, name: str) -> Environment:
        """One environment's settings."""
        ...

    def configure(self, name: str, *, changes: Mapping[str, Any], actor: str,
                  create: bool = True) -> Environment:
        """Create or change an environment's settings."""
        ...

    def deploy(self, model: str, ref: str | int, *, env: str, reason: str | None, actor: str,
               force: bool = False, on_phase: PhaseHook | None = None,
               dry_run: bool = False) -> Operation:
        """Make `env` serve a version after preflight (with `dry_run`: check only)."""
        ...

    def plan_rollback(self, model: str, *, env: str, to: str | int | None = None,
                      force: bool = False, actor: str = "") -> RollbackPlan:
        """The dry run of a rollback."""
        ...

    def rollback(self, model: str, *, env: str, reason: str | None, actor: str,
                 to: str | int | None = None, force: bool = False,
                 trigger: Mapping[str, Any] | None = None,
                 on_phase: PhaseHook | None = None,
                 cause: RollbackCause | str = RollbackCause.MODEL,
                 plan: RollbackPlan | None = None) -> Operation:
        """Put the last verified version back; with `plan`, the one a person confirmed; only
        cause `model` quarantines the replaced one."""
        ...

    def resume(self, *, model: str | None = None, env: str | None = None) -> list[Operation]:
        """Finish interrupted operations."""
        ...

    def verify(self, model: str, *, env: str, baseline: Mapping[str, float], reason: str | None,
               actor: str, window_start: datetime | None = None) -> Deployment:
        """Mark the live deployment verified."""
        ...

    def status(self, model: str, *, env: str) -> Status:
        """Desired against actual."""
        ...

    def history(self, model: str, *, env: str) -> list[Deployment]:
        """Deployments of (model, env), newest first."""
        ...

    def operation(self, op_id: str) -> Operation:
        """One operation."""
        ...

    def operations(self, *, model: str | None = None, env: str | None = None,
                   limit: int = 50) -> list[Operation]:
        """Operations, newest first."""
        ...


class QuarantineFace(Protocol):
    def list(self, *, model: str | None = None) -> list[Quarantine]:
        """Every quarantined version, with the event that quarantined it."""
        ...

    def lift(self, model: str, ref: str | int, *, reason: str | None, actor: str) -> Version:
        """Make a quarantined version active again (audited; a reason is required)."""
        ...


class ArchivesFace(Protocol):
    def list(self, *, model: str | None = None, env: str | None = None) -> list[ArchiveRecord]:
        """Forensic bundles, newest first."""
        ...

    def show(self, archive_id: str) -> tuple[ArchiveRecord, dict[str, bytes]]:
        """A bundle's record and its verified members."""
        ...

    def export(self, archive_id: str, dest: Path) -> ArchiveRecord:
        """Write the verified tar to `dest`."""
        ...


class AuditFace(Protocol):
    def verify(self) -> ChainReport:
        """Check the hash chain."""
        ...

    def export_lines(self) -> Iterator[str]:
        """Every event as one JSON line."""
        ...


class AccessFace(Protocol):
    def create_token(self, owner: str, *, role: Role, actor: str,
                     expires_in_s: float | None = None) -> IssuedToken:
        """Issue a token (its secret is returned once)."""
        ...

    def tokens(self) -> list[ApiToken]:
        """Every token record."""
        ...

    def revoke_token(self, token_id: str, *, actor: str) -> ApiToken:
        """Revoke a token."""
        ...


class SigningFace(Protocol):
    def create_key(self, name: str, *, actor: str) -> SigningKey:
        """Make a key pair here and record its public key."""
        ...

    def public_keys(self) -> list[SigningKey]:
        """Every recorded public key."""
        ...


class HistoryFace(Protocol):
    def view(self, model: str, *, env: str, span: timedelta, buckets: int = 1500) -> HistoryView:
        """The metric history of the last `span` (1 minute to 30 days) in at most `buckets`
        buckets: points per version, the baseline each deployment was judged against,
        deploy/rollback/verify markers."""
        ...


class ControlPlane(Protocol):
    """Everything the CLI calls: the local `Services` or a remote control plane."""

    @property
    def registry(self) -> RegistryFace: ...

    @property
    def deployments(self) -> DeploymentsFace: ...

    @property
    def archives(self) -> ArchivesFace: ...

    @property
    def quarantine(self) -> QuarantineFace: ...

    @property
    def audit(self) -> AuditFace: ...

    @property
    def access(self) -> AccessFace: ...

    @property
    def signing(self) -> SigningFace: ...

    @property
    def history(self) -> HistoryFace: ...
