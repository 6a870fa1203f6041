"""Engines for SQLite and PostgreSQL, and `Tx`: the one path every statement takes.

SQLite: WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE for every transaction, so
concurrent writers queue for the write lock instead of failing when a read lock is upgraded.
PostgreSQL: pre-pinged pooled connections with a short connect timeout, so an unreachable server
is reported in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Connection, CursorResult, Engine, Executable, Table, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from lastgood.adapters.registry_rules import NOTIFY_CHANNEL
from lastgood.adapters.sql.errors import safe_url, translated
from lastgood.domain.errors import InvalidInput

__all__ = ["BUSY_TIMEOUT_S", "CONNECT_TIMEOUT_S", "NOTIFY_CHANNEL", "Tx", "make_engine",
           "parse_url"]

BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5

if TYPE_CHECKING:  # the PostgreSQL dialect is imported by PostgreSQL registries only
    from sqlalchemy.dialects import postgresql

Upsert: TypeAlias = "postgresql.Insert | sqlite.Insert"


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for `url`; bare postgresql:// URLs use psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(f"cannot parse the registry database URL {safe_url(url)!r}",
                           fix="use sqlite:///PATH or postgresql://USER@HOST/DB in "
                               "LASTGOOD_DB_URL") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput(f"unsupported registry database {parsed.get_backend_name()!r}",
                           fix="use sqlite:///PATH or postgresql://USER@HOST/DB in "
                               "LASTGOOD_DB_URL")
    return parsed


def make_engine(url: str) -> Engine:
    """A configured engine for a SQLite or PostgreSQL URL (creating a SQLite file's directory)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    # lock_timeout mirrors SQLite's busy timeout: a writer stuck behind a hung transaction gets
    # a retryable error instead of waiting forever.
    options = f"-c lock_timeout={int(BUSY_TIMEOUT_S * 1000)}"
    return create_engine(parsed, pool_pre_ping=True,
                         connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "options": options})


def _sqlite_engine(parsed: URL) -> Engine:
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
        # one shared connection, or every connection would see its own empty database
        poolclass=StaticPool if in_memory else None,
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    # Take transaction control from the sqlite3 module, which would otherwise BEGIN only before
    # the first write (too late: the read lock cannot always be upgraded) and never for DDL.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Tx:
    """A unit of work's connection: transactions begin on first use, errors are translated."""

    def __init__(self, conn: Connection, url: str) -> None:
        self.conn = conn
        self.url = url
        self.dialect = conn.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def execute(self, statement: Executable, params: dict[str, Any] | None = None
                ) -> CursorResult[Any]:
        """Run one statement in the current transaction (beginning one if needed)."""
        with translated(self.url):
            return self.conn.execute(statement, params)

    def insert(self, table: Table) -> Upsert:
        """An INSERT that supports ON CONFLICT on this dialect."""
        if self.is_postgres:
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        return sqlite.insert(table)
