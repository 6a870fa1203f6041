"""`DbRegistry`: a SQLite file or a PostgreSQL database as a UnitOfWorkFactory, over DB-API."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

from lastgood.adapters.dbapi.connection import (
    POSTGRES,
    SQLITE,
    DbTx,
    Dialect,
    SqliteTarget,
    masked,
    translated,
)
from lastgood.adapters.dbapi.history import DbHistory
from lastgood.adapters.dbapi.records import (
    DbArchives,
    DbKeys,
    DbLeases,
    DbOperations,
    DbReplicas,
    DbTokens,
)
from lastgood.adapters.dbapi.repos import (
    DbDeployments,
    DbEnvironments,
    DbEvents,
    DbModels,
    DbVersions,
)
from lastgood.ports import ChangeAnnouncer

HEAD_QUERY = "SELECT version_num FROM alembic_version"
log = logging.getLogger(__name__)
_IDLE_MAX = 8


class DbRegistry:
    """A registry database; calling it opens a new unit of work.

    The schema is `lastgood.adapters.schema`'s (its migrations create and upgrade it):
    `revision()` says which one the database holds, and the composition root migrates before
    using this one. Connections are kept for reuse (a few idle at most), each used by one unit
    of work at a time; a PostgreSQL connection is pinged before reuse, and a broken one is
    dropped. A database in memory lives in one connection: every unit of work shares it, one
    thread at a time (a unit of work opened inside another in the same thread joins it).
    """

    def __init__(self, url: str, connect: Callable[[], Any], dialect: Dialect, *,
                 in_memory: bool = False, announcer: ChangeAnnouncer | None = None) -> None:
        self.url = url
        self.dialect = dialect
        self.in_memory = in_memory
        self.announcer = announcer
        """Told the environments a SQLite commit moved (PostgreSQL notifies by itself)."""
        self._connect = connect
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._only: Any = None  # the connection of a database in memory
        self._turn = threading.RLock()
        self._depth = 0

    def __call__(self) -> DbUnitOfWork:
        return DbUnitOfWork(self)

    def __repr__(self) -> str:
        return f"DbRegistry({masked(self.url)!r})"

    def revision(self) -> str | None:
        """The schema revision the database holds; None before the first migration."""
        conn = self.take()
        try:
            found = DbTx(conn, self.url, self.dialect).execute(HEAD_QUERY).fetchall()
        except Exception:  # no such table (a new database); unreachable ones fail at take()
            return None
        finally:
            self.give_back(conn)
        return str(found[0][0]) if len(found) == 1 else None

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection of this registry, outside any unit of work (to migrate it)."""
        conn = self.take()
        try:
            yield conn
        finally:
            self.give_back(conn)

    def take(self) -> Any:
        if self.in_memory:
            return self._take_only()
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                with translated(self.url, self.dialect):
                    return self._connect()
            if self._alive(conn):
                return conn

    def _alive(self, conn: Any) -> bool:
        if not self.dialect.is_postgres:
            return True
        try:
            conn.execute("SELECT 1")
            conn.rollback()
        except Exception:
            conn.close()
            return False
        return True

    def _take_only(self) -> Any:
        self._turn.acquire()
        try:
            if self._only is None:
                with translated(self.url, self.dialect):
                    self._only = self._connect()
        except BaseException:
            self._turn.release()
            raise
        self._depth += 1
        return self._only

    def give_back(self, conn: Any) -> None:
        if self.in_memory:
            self._give_back_only(conn)
            return
        with translated(self.url, self.dialect):
            if self.dialect.is_postgres:
                if conn.broken or conn.closed:
                    return
                conn.rollback()
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        with self._lock:
            if len(self._idle) < _IDLE_MAX:
                self._idle.append(conn)
                return
        conn.close()

    def _give_back_only(self, conn: Any) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and conn.in_transaction:  # the outermost unit of work ends
                with translated(self.url, self.dialect):
                    conn.execute("ROLLBACK")
        finally:
            self._turn.release()

    def dispose(self) -> None:
        """Close every idle connection (at shutdown, or in a child after fork); a database
        in memory is gone with its connection."""
        with self._lock:
            idle, self._idle = self._idle, []
            only, self._only = self._only, None
        for conn in [*idle, *([only] if only is not None else [])]:
            conn.close()


def sqlite_registry(url: str, target: SqliteTarget, *,
                    announcer: ChangeAnnouncer | None = None) -> DbRegistry:
    from lastgood.adapters.dbapi.connection import connect_sqlite

    return DbRegistry(url, lambda: connect_sqlite(target), SQLITE, in_memory=target.in_memory,
                      announcer=announcer)


def postgres_registry(url: str, dsn: str) -> DbRegistry:
    from lastgood.adapters.dbapi.connection import connect_postgres

    return DbRegistry(url, lambda: connect_postgres(dsn), POSTGRES)


class DbUnitOfWork:
    """One transaction at a time over one connection; use it as a context manager.

    `commit()` makes the changes durable; the next statement begins a new transaction. Leaving
    the block rolls back whatever was not committed and gives the connection back.
    """

    models: DbModels
    versions: DbVersions
    events: DbEvents
    environments: DbEnvironments
    deployments: DbDeployments
    operations: DbOperations
    leases: DbLeases
    archives: DbArchives
    replicas: DbReplicas
    tokens: DbTokens
    keys: DbKeys
    history: DbHistory

    def __init__(self, registry: DbRegistry) -> None:
        self._registry = registry
        self._tx: DbTx | None = None

    def __enter__(self) -> Self:
        if self._tx is not None:
            raise RuntimeError("this unit of work is already open")
        registry = self._registry
        tx = self._tx = DbTx(registry.take(), registry.url, registry.dialect)
        self.models, self.versions = DbModels(tx), DbVersions(tx)
        self.events, self.environments = DbEvents(tx), DbEnvironments(tx)
        self.deployments, self.operations = DbDeployments(tx), DbOperations(tx)
        self.leases, self.archives = DbLeases(tx), DbArchives(tx)
        self.replicas, self.tokens, self.keys = DbReplicas(tx), DbTokens(tx), DbKeys(tx)
        self.history = DbHistory(tx)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        tx, self._tx = self._tx, None
        if tx is None:
            return
        try:
            self._registry.give_back(tx.conn)
        except Exception:
            tx.conn.close()
            if exc is None:  # do not hide the error that is already on its way out
                raise

    def commit(self) -> None:
        """Make every change since the last commit durable, all or nothing."""
        tx = self._tx
        if tx is None:
            raise RuntimeError("commit() outside `with uow:`")
        with tx.translated():
            if tx.is_postgres:
                tx.conn.commit()
            elif tx.conn.in_transaction:
                tx.conn.execute("COMMIT")
        self._announce(tx)

    def _announce(self, tx: DbTx) -> None:
        """Wake the replicas of the environments the commit moved (a SQLite registry's way;
        PostgreSQL's NOTIFY went with the commit). Best effort: the commit stands."""
        envs, announcer = sorted(tx.changed), self._registry.announcer
        tx.changed.clear()
        if not envs or announcer is None:
            return
        try:
            announcer.announce(envs)
        except Exception:  # replicas still poll: a lost announcement costs only latency
            log.exception("announcing the change of %s failed", ", ".join(envs))
