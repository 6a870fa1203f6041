"""An in-memory registry: every repository port, transactional, for tests and demos.

Many units of work open one shared `MemoryRegistry`. A unit of work works on a private copy of the
tables and publishes it on `commit()`; leaving the block without committing discards it. Like the
SQLite adapter (BEGIN IMMEDIATE), one unit of work runs at a time, so number allocation and the
audit chain are serialised; opening a second one in the same thread while one is open is a bug
(it would deadlock on SQLite) and raises at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Self

from lastgood.adapters import registry_rules as rc
from lastgood.domain import codec
from lastgood.domain.access import ApiToken, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import GENESIS_HASH, Event, EventDraft, seal
from lastgood.domain.deployments import (
    Deployment,
    DeploymentEnd,
    Environment,
    ReplicaReport,
    VerifiedRecord,
)
from lastgood.domain.history import HistoryPoint
from lastgood.domain.operations import Operation
from lastgood.domain.versions import Model, NewVersion, Version, VersionStatus
from lastgood.testing.memory_access import MemoryKeys, MemoryTokens
from lastgood.testing.memory_history import MemoryHistory

__all__ = ["MemoryRegistry", "MemoryUnitOfWork", "memory_uow_factory"]


@dataclass(slots=True)
class _Tables:
    """The registry's rows. Values are immutable domain records, so a shallow copy isolates."""

    models: dict[str, datetime] = field(default_factory=dict)  # name -> created_at
    last_number: dict[str, int] = field(default_factory=dict)
    versions: dict[tuple[str, int], Version] = field(default_factory=dict)
    tags: dict[tuple[str, str], int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    head: tuple[int, str] = (0, GENESIS_HASH)
    environments: dict[str, Environment] = field(default_factory=dict)
    deployments: dict[int, Deployment] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    archives: dict[str, ArchiveRecord] = field(default_factory=dict)
    replicas: dict[tuple[str, str, str], ReplicaReport] = field(default_factory=dict)
    tokens: dict[str, ApiToken] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    history: list[HistoryPoint] = field(default_factory=list)

    def copy(self) -> _Tables:
        return _Tables(
            models=dict(self.models), last_number=dict(self.last_number),
            versions=dict(self.versions), tags=dict(self.tags), events=list(self.events),
            head=self.head, environments=dict(self.environments),
            deployments=dict(self.deployments), generations=dict(self.generations),
            operations=dict(self.operations), leases=dict(self.leases),
            archives=dict(self.archives), replicas=dict(self.replicas),
            tokens=dict(self.tokens), keys=dict(self.keys), history=list(self.history),
        )

    def require_model(self, name: str) -> None:
        if name not in self.models:
            raise rc.unknown_model(name, self.models)


class MemoryModels:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def list(self) -> list[Model]:
        return [self.get(name) for name in sorted(self._t.models)]

    def get(self, name: str) -> Model:
        self._t.require_model(name)
        count = sum(1 for (model, _) in self._t.versions if model == name)
        return Model(name=name, created_at=self._t.models[name],
                     latest_number=self._t.last_number.get(name, 0), version_count=count)


class MemoryVersions:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def add(self, new: NewVersion, *, at: datetime, actor: str) -> Version:
        t = self._t
        if new.tag is not None and (new.model, new.tag) in t.tags:
            raise rc.duplicate_tag(new.model, new.tag, t.tags[(new.model, new.tag)])
        t.models.setdefault(new.model, rc.utc(at))
        number = t.last_number.get(new.model, 0) + 1
        t.last_number[new.model] = number
        version = Version(
            model=new.model, number=number, manifest=new.manifest, digest=new.manifest.digest,
            flavor=new.flavor, created_at=rc.utc(at), created_by=actor, runtime=new.runtime,
            schema=new.schema, golden=new.golden, metrics=dict(new.metrics),
            provenance=dict(new.provenance), labels=tuple(new.labels), tag=new.tag,
            unsafe_format=new.unsafe_format, signature=new.signature, signed_by=new.signed_by,
        )
        t.versions[(new.model, number)] = version
        if new.tag is not None:
            t.tags[(new.model, new.tag)] = number
        return version

    def get(self, model: str, ref: int | str) -> Version:
        t = self._t
        t.require_model(model)
        number = ref if isinstance(ref, int) else t.tags.get((model, ref))
        found = t.versions.get((model, number)) if number is not None else None
        if found is None:
            raise rc.unknown_version(model, ref, t.last_number.get(model, 0))
        return found

    def list(self, model: str, *, limit: int | None = None, offset: int = 0) -> list[Version]:
        self._t.require_model(model)
        rows = sorted((v for (m, _), v in self._t.versions.items() if m == model),
                      key=lambda v: v.number, reverse=True)
        return rows[offset:] if limit is None else rows[offset:offset + limit]

    def set_status(self, model: str, number: int, status: VersionStatus) -> Version:
        updated = replace(self.get(model, number), status=status)
        self._t.versions[(model, number)] = updated
        return updated

    def referenced_blobs(self) -> set[str]:
        return {f.sha256 for v in self._t.versions.values() for f in v.manifest.files}

    def with_digest(self, model: str, digest: str, *, key: str,
                    origin: str | None) -> Version | None:
        found = sorted((v for (m, _), v in self._t.versions.items()
                        if m == model and v.digest == digest), key=lambda v: v.number)
        return next((v for v in found if origin is None or v.provenance.get(key) == origin), None)


class MemoryEvents:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def append(self, draft: EventDraft, *, at: datetime) -> Event:
        # Store what a JSON column would give back, so the hash verifies the same way it does
        # after a round trip through the SQL adapter.
        event = seal(self._t.head, rc.utc(at), codec.stored_draft(draft))
        self._t.events.append(event)
        self._t.head = (event.seq, event.hash)
        return event

    def list(self, *, model: str | None = None, env: str | None = None,
             after_seq: int = 0, limit: int | None = None) -> list[Event]:
        rows = [e for e in self._t.events if e.seq > after_seq
                and (model is None or e.draft.model == model)
                and (env is None or e.draft.env == env)]
        return rows if limit is None else rows[:limit]

    def latest(self, *, actions: Sequence[str], model: str, env: str) -> Event | None:
        return next((e for e in reversed(self._t.events) if e.draft.action in actions
                     and e.draft.model == model and e.draft.env == env), None)

    def scan(self, *, batch: int = 1000) -> Iterator[Event]:
        yield from list(self._t.events)

    def head(self) -> tuple[int, str]:
        return self._t.head


class MemoryEnvironments:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def get(self, name: str) -> Environment:
        if name not in self._t.environments:
            raise rc.unknown_env(name, self._t.environments)
        return self._t.environments[name]

    def put(self, env: Environment) -> Environment:
        self._t.environments[env.name] = env
        return env

    def list(self) -> list[Environment]:
        return [self._t.environments[n] for n in sorted(self._t.environments)]


class MemoryDeployments:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def live(self, model: str, env: str) -> Deployment | None:
        return next((d for d in self.history(model, env) if d.is_live), None)

    def history(self, model: str, env: str) -> list[Deployment]:
        return sorted((d for d in self._t.deployments.values()
                       if d.model == model and d.env == env), key=lambda d: d.id, reverse=True)

    def start(self, *, model: str, env: str, version: int, at: datetime, actor: str,
              reason: str, operation_id: str | None) -> Deployment:
        MemoryVersions(self._t).get(model, version)  # the SQL foreign key
        new_id = max(self._t.deployments, default=0) + 1
        dep = Deployment(id=new_id, model=model, env=env, version=version,
                         started_at=rc.utc(at), deployed_by=actor, reason=reason,
                         operation_id=operation_id)
        self._t.deployments[new_id] = dep
        self._bump(env)
        return dep

    def end(self, deployment_id: int, *, at: datetime, end: DeploymentEnd, reason: str) -> None:
        dep = self.get(deployment_id)
        if not dep.is_live:
            raise rc.deployment_ended(deployment_id)
        self._t.deployments[deployment_id] = replace(dep, ended_at=rc.utc(at), end=end,
                                                     end_reason=reason)
        self._bump(dep.env)

    def set_verified(self, deployment_id: int, record: VerifiedRecord) -> Deployment:
        dep = replace(self.get(deployment_id), verified=record)
        self._t.deployments[deployment_id] = dep
        return dep

    def get(self, deployment_id: int) -> Deployment:
        if deployment_id not in self._t.deployments:
            raise rc.unknown_deployment(deployment_id)
        return self._t.deployments[deployment_id]

    def generation(self, env: str) -> int:
        return self._t.generations.get(env, 0)

    def touch(self, env: str) -> None:
        self._bump(env)

    def _bump(self, env: str) -> None:
        self._t.generations[env] = self._t.generations.get(env, 0) + 1


class MemoryOperations:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def save(self, op: Operation) -> None:
        self._t.operations[op.id] = _as_stored(op)

    def get(self, op_id: str) -> Operation:
        if op_id not in self._t.operations:
            raise rc.unknown_operation(op_id)
        return self._t.operations[op_id]

    def unfinished(self, *, model: str | None = None, env: str | None = None) -> list[Operation]:
        rows = [o for o in _matching(self._t, model, env) if not o.phase.is_terminal]
        return sorted(rows, key=lambda o: (o.created_at, o.id))

    def list(self, *, model: str | None = None, env: str | None = None,
             limit: int = 50) -> list[Operation]:
        rows = sorted(_matching(self._t, model, env), key=lambda o: (o.created_at, o.id),
                      reverse=True)
        return rows[:limit]


def _as_stored(op: Operation) -> Operation:
    """The operation as JSON columns give it back (what the SQL adapter returns)."""
    return codec.operation_from_json(codec.operation_to_json(op))


def _matching(t: _Tables, model: str | None, env: str | None) -> list[Operation]:
    return [o for o in t.operations.values()
            if (model is None or o.model == model) and (env is None or o.env == env)]


class MemoryLeases:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def acquire(self, key: str, *, holder: str, now: datetime, ttl_s: float) -> None:
        held = self._t.leases.get(key)
        if held is not None and held[0] != holder and held[1] > rc.utc(now):
            raise rc.lease_held(key, held[0], held[1])
        self._t.leases[key] = (holder, rc.expiry(now, ttl_s))

    def release(self, key: str, *, holder: str) -> None:
        held = self._t.leases.get(key)
        if held is not None and held[0] == holder:
            del self._t.leases[key]


class MemoryArchives:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def add(self, record: ArchiveRecord) -> None:
        if record.id in self._t.archives:
            raise rc.duplicate_archive(record.id)
        self._t.archives[record.id] = replace(record, manifest=codec.json_safe(record.manifest)
                                              or {})

    def get(self, archive_id: str) -> ArchiveRecord:
        if archive_id not in self._t.archives:
            raise rc.unknown_archive(archive_id)
        return self._t.archives[archive_id]

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ArchiveRecord]:
        rows = [a for a in self._t.archives.values()
                if (model is None or a.model == model) and (env is None or a.env == env)]
        return sorted(rows, key=lambda a: (a.created_at, a.id), reverse=True)


class MemoryReplicas:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def report(self, report: ReplicaReport) -> None:
        self._t.replicas[(report.replica_id, report.model, report.env)] = report

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ReplicaReport]:
        rows = [r for r in self._t.replicas.values()
                if (model is None or r.model == model) and (env is None or r.env == env)]
        return sorted(rows, key=lambda r: (r.model, r.env, r.replica_id))


class MemoryRegistry:
    """The shared state; calling it opens a new unit of work (it is a UnitOfWorkFactory)."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = threading.Lock()
        self._owner: int | None = None

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def _begin(self) -> _Tables:
        if self._owner == threading.get_ident():
            raise RuntimeError("a unit of work is already open in this thread; nested units of "
                               "work deadlock on SQLite — pass the open one down instead")
        self._lock.acquire()
        self._owner = threading.get_ident()
        return self._tables.copy()

    def _publish(self, tables: _Tables) -> None:
        self._tables = tables

    def _end(self) -> None:
        self._owner = None
        self._lock.release()


class MemoryUnitOfWork:
    """One transaction over a MemoryRegistry; use it as a context manager."""

    models: MemoryModels
    versions: MemoryVersions
    events: MemoryEvents
    environments: MemoryEnvironments
    deployments: MemoryDeployments
    operations: MemoryOperations
    leases: MemoryLeases
    archives: MemoryArchives
    replicas: MemoryReplicas
    tokens: MemoryTokens
    keys: MemoryKeys
    history: MemoryHistory

    def __init__(self, registry: MemoryRegistry) -> None:
        self._registry = registry
        self._work: _Tables | None = None

    def __enter__(self) -> Self:
        if self._work is not None:
            raise RuntimeError("this unit of work is already open")
        self._open(self._registry._begin())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._work is not None:
            self._work = None
            self._registry._end()

    def commit(self) -> None:
        """Publish every change; the unit of work stays open for more (a new transaction)."""
        if self._work is None:
            raise RuntimeError("commit() outside `with uow:`")
        self._registry._publish(self._work)
        self._open(self._work.copy())

    def _open(self, work: _Tables) -> None:
        self._work = work
        self.models = MemoryModels(work)
        self.versions = MemoryVersions(work)
        self.events = MemoryEvents(work)
        self.environments = MemoryEnvironments(work)
        self.deployments = MemoryDeployments(work)
        self.operations = MemoryOperations(work)
        self.leases = MemoryLeases(work)
        self.archives = MemoryArchives(work)
        self.replicas = MemoryReplicas(work)
        self.tokens = MemoryTokens(work.tokens)
        self.keys = MemoryKeys(work.keys)
        self.history = MemoryHistory(work.history)


def memory_uow_factory(state: MemoryRegistry | None = None) -> MemoryRegistry:
    """A UnitOfWorkFactory over `state` (a fresh empty registry when omitted)."""
    return state if state is not None else MemoryRegistry()
