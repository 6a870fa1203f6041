"""`LiteRegistry`: the SQLite registry file as a UnitOfWorkFactory, over stdlib sqlite3."""

from __future__ import annotations

import sqlite3
import threading
from types import TracebackType
from typing import Self

from lastgood.adapters.sqlite.connection import LiteTx, connect, translated
from lastgood.adapters.sqlite.records import (
    LiteArchives,
    LiteKeys,
    LiteLeases,
    LiteOperations,
    LiteReplicas,
    LiteTokens,
)
from lastgood.adapters.sqlite.repos import (
    LiteDeployments,
    LiteEnvironments,
    LiteEvents,
    LiteModels,
    LiteVersions,
)

HEAD_QUERY = "SELECT version_num FROM alembic_version"
_IDLE_MAX = 8


class LiteRegistry:
    """A SQLite registry file; calling it opens a new unit of work.

    The schema is the SQLAlchemy adapter's (its migrations create and upgrade it): `revision()`
    says which one the file holds, and the composition root migrates before using this one.
    Connections are kept for reuse (a few idle at most), each used by one unit of work at a time.
    """

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def __call__(self) -> LiteUnitOfWork:
        return LiteUnitOfWork(self)

    def __repr__(self) -> str:
        return f"LiteRegistry({self.url!r})"

    def revision(self) -> str | None:
        """The schema revision the file holds; None before the first migration."""
        conn = self.take()
        try:
            found = conn.execute(HEAD_QUERY).fetchall()
        except sqlite3.OperationalError:  # no such table: a new file
            return None
        finally:
            self.give_back(conn)
        return str(found[0][0]) if len(found) == 1 else None

    def take(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        with translated(self.url):
            return connect(self.path)

    def give_back(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        with self._lock:
            if len(self._idle) < _IDLE_MAX:
                self._idle.append(conn)
                return
        conn.close()

    def dispose(self) -> None:
        """Close every idle connection (at shutdown, or in a child after fork)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class LiteUnitOfWork:
    """One transaction at a time over one connection; use it as a context manager.

    `commit()` makes the changes durable; the next statement begins a new transaction. Leaving
    the block rolls back whatever was not committed and gives the connection back.
    """

    models: LiteModels
    versions: LiteVersions
    events: LiteEvents
    environments: LiteEnvironments
    deployments: LiteDeployments
    operations: LiteOperations
    leases: LiteLeases
    archives: LiteArchives
    replicas: LiteReplicas
    tokens: LiteTokens
    keys: LiteKeys

    def __init__(self, registry: LiteRegistry) -> None:
        self._registry = registry
        self._tx: LiteTx | None = None

    def __enter__(self) -> Self:
        if self._tx is not None:
            raise RuntimeError("this unit of work is already open")
        tx = self._tx = LiteTx(self._registry.take(), self._registry.url)
        self.models, self.versions = LiteModels(tx), LiteVersions(tx)
        self.events, self.environments = LiteEvents(tx), LiteEnvironments(tx)
        self.deployments, self.operations = LiteDeployments(tx), LiteOperations(tx)
        self.leases, self.archives = LiteLeases(tx), LiteArchives(tx)
        self.replicas, self.tokens, self.keys = LiteReplicas(tx), LiteTokens(tx), LiteKeys(tx)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        tx, self._tx = self._tx, None
        if tx is None:
            return
        try:
            with translated(tx.url):
                self._registry.give_back(tx.conn)
        except Exception:
            tx.conn.close()
            if exc is None:  # do not hide the error that is already on its way out
                raise

    def commit(self) -> None:
        """Make every change since the last commit durable, all or nothing."""
        if self._tx is None:
            raise RuntimeError("commit() outside `with uow:`")
        if self._tx.conn.in_transaction:
            with translated(self._tx.url):
                self._tx.conn.execute("COMMIT")
