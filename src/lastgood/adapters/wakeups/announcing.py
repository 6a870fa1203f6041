"""A unit of work that announces, right after each commit, the environments whose desired state
the commit changed: what a SQLite registry does instead of PostgreSQL's NOTIFY.

It decorates any `UnitOfWorkFactory` through the ports alone (the SQL adapters stay as they
are): a desired state changes exactly when a deployment starts or ends, so the decorator notes
the environment of each `deployments.start` and `deployments.end` in the open transaction and
hands them to its `ChangeAnnouncer` once `commit()` returned. A transaction left without a
commit announces nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from types import TracebackType
from typing import Self

from lastgood.domain.deployments import Deployment, DeploymentEnd, VerifiedRecord
from lastgood.ports import ChangeAnnouncer
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

__all__ = ["AnnouncingRegistry", "AnnouncingUnitOfWork"]

log = logging.getLogger(__name__)


class AnnouncingRegistry:
    """`inner`, whose units of work announce the environments their commits changed."""

    def __init__(self, inner: UnitOfWorkFactory, announcer: ChangeAnnouncer) -> None:
        self.inner, self.announcer = inner, announcer

    def __call__(self) -> AnnouncingUnitOfWork:
        return AnnouncingUnitOfWork(self.inner(), self.announcer)

    def __repr__(self) -> str:
        return f"AnnouncingRegistry({self.inner!r})"

    def dispose(self) -> None:
        """Close the inner registry's connections (when it has any)."""
        dispose = getattr(self.inner, "dispose", None)
        if dispose is not None:
            dispose()


class AnnouncingUnitOfWork:
    """One transaction of the inner unit of work; `commit()` announces what it changed."""

    def __init__(self, uow: UnitOfWork, announcer: ChangeAnnouncer) -> None:
        self._uow, self._announcer = uow, announcer
        self._changed: set[str] = set()

    def __enter__(self) -> Self:
        self._uow.__enter__()
        self._changed.clear()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._changed.clear()  # not committed: nothing to announce
        self._uow.__exit__(exc_type, exc, tb)

    def commit(self) -> None:
        self._uow.commit()
        if not self._changed:
            return
        envs = sorted(self._changed)
        self._changed.clear()
        try:
            self._announcer.announce(envs)
        except Exception:  # the commit stands; replicas still poll
            log.exception("announcing the change of %s failed", ", ".join(envs))

    @property
    def deployments(self) -> DeploymentRepository:
        return _NotingDeployments(self._uow.deployments, self._changed)

    @property
    def models(self) -> ModelRepository:
        return self._uow.models

    @property
    def versions(self) -> VersionRepository:
        return self._uow.versions

    @property
    def events(self) -> EventLog:
        return self._uow.events

    @property
    def environments(self) -> EnvironmentRepository:
        return self._uow.environments

    @property
    def operations(self) -> OperationRepository:
        return self._uow.operations

    @property
    def leases(self) -> LeaseRepository:
        return self._uow.leases

    @property
    def archives(self) -> ArchiveRepository:
        return self._uow.archives

    @property
    def replicas(self) -> ReplicaRepository:
        return self._uow.replicas

    @property
    def tokens(self) -> TokenRepository:
        return self._uow.tokens

    @property
    def keys(self) -> KeyRepository:
        return self._uow.keys

    @property
    def history(self) -> HistoryRepository:
        return self._uow.history


class _NotingDeployments:
    """The inner deployments; `start` and `end` note the environment they change."""

    def __init__(self, inner: DeploymentRepository, changed: set[str]) -> None:
        self._inner, self._changed = inner, changed

    def start(self, *, model: str, env: str, version: int, at: datetime, actor: str,
              reason: str, operation_id: str | None) -> Deployment:
        found = self._inner.start(model=model, env=env, version=version, at=at, actor=actor,
                                  reason=reason, operation_id=operation_id)
        self._changed.add(env)
        return found

    def end(self, deployment_id: int, *, at: datetime, end: DeploymentEnd, reason: str) -> None:
        self._inner.end(deployment_id, at=at, end=end, reason=reason)
        self._changed.add(self._inner.get(deployment_id).env)

    def live(self, model: str, env: str) -> Deployment | None:
        return self._inner.live(model, env)

    def history(self, model: str, env: str) -> list[Deployment]:
        return self._inner.history(model, env)

    def set_verified(self, deployment_id: int, record: VerifiedRecord) -> Deployment:
        return self._inner.set_verified(deployment_id, record)

    def get(self, deployment_id: int) -> Deployment:
        return self._inner.get(deployment_id)

    def generation(self, env: str) -> int:
        return self._inner.generation(env)
