"""The desired state of an environment, as serving replicas follow it (safety rule 2).

For every model deployed to the environment: the version that should be live, and the versions a
replica should keep loaded and warm as standby so that a rollback loads nothing: the most recent
*verified*, still active versions that served the environment, other than the live one. A
deploy being checked adds its target as a *shadow*: every replica loads it as one more standby,
replays today's traffic on it and reports, before the deploy moves any traffic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lastgood.domain.deployments import Deployment
from lastgood.domain.versions import Version, VersionStatus
from lastgood.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["DesiredModel", "DesiredState", "load_desired", "load_live", "read_desired",
           "standby_versions"]


@dataclass(frozen=True, slots=True)
class DesiredModel:
    """What one model should look like on every replica of an environment."""

    model: str
    live: Version
    deployment_id: int
    standby: tuple[Version, ...] = ()  # most recently verified first
    shadow: tuple[Version, ...] = ()  # deploy targets being checked: warm them, replay them


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Every deployed model of an environment, read in one transaction."""

    env: str
    generation: int
    models: tuple[DesiredModel, ...] = ()

    def get(self, model: str) -> DesiredModel | None:
        """The desire for one model, or None when the environment does not serve it."""
        return next((m for m in self.models if m.model == model), None)


def standby_versions(history: Sequence[Deployment], *, live_version: int,
                     limit: int) -> list[int]:
    """Numbers of the `limit` most recently served, verified versions other than the live one.

    Only verified deployments count: a version that merely served once is no rollback target, so
    keeping it warm would waste memory (the same rule target selection applies).
    """
    chosen: list[int] = []
    newest_first = sorted(history, key=lambda d: (d.started_at, d.id), reverse=True)
    for dep in newest_first:
        if len(chosen) >= limit:
            break
        if dep.version != live_version and dep.is_verified and dep.version not in chosen:
            chosen.append(dep.version)
    return chosen


def read_desired(uow: UnitOfWork, env: str, *, standby: int = 1) -> DesiredState:
    """The desired state of `env` inside an open unit of work (read only)."""
    generation = uow.deployments.generation(env)
    models: list[DesiredModel] = []
    shadows: dict[str, list[int]] = {}
    for op in uow.operations.unfinished(env=env):
        if op.shadow is not None:
            shadows.setdefault(op.model, []).append(op.shadow)
    for model in uow.models.list():
        live = uow.deployments.live(model.name, env)
        if live is None:
            continue
        history = uow.deployments.history(model.name, env)
        # Take every verified candidate, then drop quarantined or retired ones, then cut to K.
        numbers = standby_versions(history, live_version=live.version, limit=len(history))
        warm = [v for v in (uow.versions.get(model.name, n) for n in numbers)
                if v.status is VersionStatus.ACTIVE][: max(standby, 0)]
        models.append(DesiredModel(model=model.name,
                                   live=uow.versions.get(model.name, live.version),
                                   deployment_id=live.id, standby=tuple(warm),
                                   shadow=tuple(uow.versions.get(model.name, n)
                                                for n in shadows.get(model.name, ())
                                                if n != live.version)))
    return DesiredState(env=env, generation=generation, models=tuple(models))


def load_live(uow_factory: UnitOfWorkFactory, env: str,
              models: Sequence[str]) -> dict[str, int | None]:
    """Only the desired live version number of each of `models` (one small query each): the
    fast path a replica takes to switch to a version it already holds warm."""
    with uow_factory() as uow:
        found: dict[str, int | None] = {}
        for model in models:
            live = uow.deployments.live(model, env)
            found[model] = live.version if live is not None else None
        return found


def load_desired(uow_factory: UnitOfWorkFactory, env: str, *, standby: int = 1) -> DesiredState:
    """Open a unit of work, read the desired state of `env`, and leave without writing."""
    with uow_factory() as uow:
        return read_desired(uow, env, standby=standby)
