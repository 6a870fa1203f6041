"""`migrate(url)`: bring a registry database to the newest schema with the shipped Alembic
migrations (`upgrade head`), creating it when new.

SQLAlchemy and Alembic live here only: they own the schema, and the registry adapter
(`lastgood.adapters.dbapi`) reads and writes it at run time. Concurrent first starts are
serialised: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL, so only one process
creates the tables and the others find them at head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool, StaticPool

from lastgood.adapters import registry_rules as rules
from lastgood.adapters.dbapi.connection import (
    BUSY_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    masked,
    translate_postgres,
    translate_sqlite,
)
from lastgood.adapters.registry_rules import SCHEMA_REVISION
from lastgood.domain.errors import InvalidInput, LastGoodError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = SCHEMA_REVISION
"""The newest revision in migrations/versions (a test keeps the two equal)."""
_ADVISORY_LOCK_KEY = 0x6C617374_676F6F64 >> 1  # "lastgood", fits a signed bigint
_FIX_URL = "use sqlite:///PATH or postgresql://USER@HOST/DB in LASTGOOD_DB_URL"


def migrate(url: str, *, connection: Any = None) -> None:
    """Bring the database at `url` to head. `connection` is the registry's own DB-API
    connection of a database no other connection can reach (SQLite in memory)."""
    engine = engine_for(url, connection=connection)
    try:
        with translated(url):
            upgrade(engine)
    finally:
        engine.dispose()


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for `url`; bare postgresql:// URLs use psycopg 3."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise InvalidInput(f"cannot parse the registry database URL {masked(url)!r}",
                           fix=_FIX_URL) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput(f"unsupported registry database {parsed.get_backend_name()!r}",
                           fix=_FIX_URL)
    return parsed


def engine_for(url: str, *, connection: Any = None) -> Engine:
    """A short-lived engine for migrating `url` (over `connection` when one is handed over)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "postgresql":
        options = f"-c lock_timeout={int(BUSY_TIMEOUT_S * 1000)}"
        return create_engine(parsed, poolclass=NullPool, connect_args={
            "connect_timeout": CONNECT_TIMEOUT_S, "options": options})
    if connection is not None:
        engine = create_engine("sqlite://", creator=lambda: _Lent(connection),
                               poolclass=StaticPool)
    else:
        database = parsed.database or ""
        if database and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, poolclass=NullPool,
                               connect_args={"timeout": BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


class _Lent:
    """A DB-API connection lent to SQLAlchemy for one migration: closing it keeps it open
    (the registry owns it, and an in-memory database dies with it)."""

    def __init__(self, conn: Any) -> None:
        object.__setattr__(self, "_conn", conn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def close(self) -> None:
        """The registry closes it."""


def _sqlite_connect(dbapi_conn: Any, record: Any) -> None:
    # Take transaction control from the sqlite3 module, which would otherwise BEGIN only before
    # the first write (too late: the read lock cannot always be upgraded) and never for DDL.
    dbapi_conn.isolation_level = None
    dbapi_conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    dbapi_conn.execute("PRAGMA foreign_keys = ON")


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    """An Alembic config pointing at the shipped migrations (no alembic.ini needed)."""
    from alembic.config import Config  # imported when needed: it costs a third of a second

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def is_at_head(engine: Engine) -> bool:
    """Whether the database is already migrated to HEAD_REVISION (one cheap query)."""
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except sa_exc.SQLAlchemyError:  # no table yet, or unreachable: `upgrade` will say which
        return False
    return found == [HEAD_REVISION]


def upgrade(engine: Engine) -> None:
    """Bring the database at `engine` to the newest schema, in one transaction."""
    if is_at_head(engine):
        return  # the common case; importing and running Alembic would cost a second
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Run a block, re-raising a SQLAlchemy or driver error as the matching lastgood error."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        raise _translate(exc, url) from exc


def _translate(error: sa_exc.SQLAlchemyError, url: str) -> LastGoodError:
    import sqlite3

    orig = getattr(error, "orig", None)
    if isinstance(orig, sqlite3.Error):
        return translate_sqlite(orig, masked(url))
    if orig is not None and url.startswith("postgres"):
        return translate_postgres(orig, masked(url))
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return rules.unreachable_database(masked(url))
    return rules.database_error(str(error).splitlines()[0])
