"""The registry's tables over a plain DB-API connection: sqlite3 or psycopg, no SQLAlchemy.

The tables of `lastgood.adapters.schema`, whose migrations create them. SQLite: WAL, foreign
keys, BEGIN IMMEDIATE before a transaction's first statement, so concurrent writers queue instead
of failing on a lock upgrade. PostgreSQL: a lock timeout and a connect timeout, row locks where a
use case reads what it updates, `pg_notify` in the transaction (on SQLite the unit of work
announces the moved environments right after its commit). Values are stored as the schema's
column types store them (`schema.types`): on SQLite times as naive UTC text with microseconds,
on PostgreSQL as timestamptz; JSON as the exact text written (`registry_rules.dump_json`); a
contract test holds the two to it. psycopg is imported only for a PostgreSQL URL.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from lastgood.adapters import registry_rules as rules
from lastgood.domain.errors import InvalidInput, LastGoodError

BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5

TIMES: dict[str, frozenset[str]] = {
    "models": frozenset({"created_at"}),
    "versions": frozenset({"created_at"}),
    "events": frozenset({"at"}),
    "deployments": frozenset({"started_at", "ended_at"}),
    "operations": frozenset({"created_at", "updated_at"}),
    "leases": frozenset({"expires_at"}),
    "archives": frozenset({"created_at"}),
    "replicas": frozenset({"since", "seen_at"}),
    "api_tokens": frozenset({"created_at", "expires_at", "revoked_at"}),
    "signing_keys": frozenset({"created_at"}),
}
"""The datetime columns of each table (a contract test compares them with the tables)."""

JSONS: dict[str, frozenset[str]] = {
    "versions": frozenset({"manifest", "runtime", "schema", "golden", "metrics", "provenance",
                           "labels"}),
    "events": frozenset({"before", "after", "evidence"}),
    "environments": frozenset({"settings"}),
    "deployments": frozenset({"verified"}),
    "operations": frozenset({"candidates", "trigger"}),
    "archives": frozenset({"manifest"}),
    "replicas": frozenset({"evidence"}),
}
"""The JSON columns of each table."""

BOOLS: dict[str, frozenset[str]] = {
    "versions": frozenset({"unsafe_format"}),
    "operations": frozenset({"forced"}),
}
"""The boolean columns of each table."""

_NONE: frozenset[str] = frozenset()
Params = Mapping[str, Any] | Sequence[Any]


@dataclass(frozen=True, slots=True)
class SqliteTarget:
    """What a `sqlite:` URL names: a file (or a `file:` URI), or a database in memory."""

    database: str  # a path, a `file:` URI, or ":memory:"
    uri: bool = False
    timeout_s: float = BUSY_TIMEOUT_S

    @property
    def in_memory(self) -> bool:
        """Only one connection reaches it: the registry shares one connection."""
        return self.database == ":memory:" or (self.uri and "mode=memory" in self.database)


_SQLITE_FIX = ("use sqlite:///PATH, sqlite:// (in memory), sqlite:///PATH?timeout=SECONDS or "
               "sqlite:///file:PATH?mode=ro&uri=true")


def sqlite_target(url: str) -> SqliteTarget | None:
    """The database a `sqlite://` URL names, with its options; None for any other URL."""
    if not url.startswith("sqlite://"):
        return None
    rest = url[len("sqlite://"):]
    if rest in ("", "/", "/:memory:"):
        return SqliteTarget(":memory:")
    if not rest.startswith("/"):
        raise InvalidInput(f"cannot read the SQLite URL {url!r}", fix=_SQLITE_FIX)
    database, _, query = rest[1:].partition("?")
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    uri = options.pop("uri", "false").lower() in ("true", "1")
    timeout = options.pop("timeout", "")
    try:
        timeout_s = float(timeout) if timeout else BUSY_TIMEOUT_S
    except ValueError:
        raise InvalidInput(f"the SQLite URL's timeout {timeout!r} is not a number of seconds",
                           fix=_SQLITE_FIX) from None
    if uri:  # the other options are SQLite's own URI parameters (mode=ro, cache=shared, ...)
        rest_query = urllib.parse.urlencode(options)
        return SqliteTarget(database + (f"?{rest_query}" if rest_query else ""), True,
                            timeout_s)
    if options:
        raise InvalidInput(f"unknown SQLite URL option(s): {', '.join(sorted(options))}",
                           fix=_SQLITE_FIX)
    return SqliteTarget(database or ":memory:", False, timeout_s)


def postgres_dsn(url: str) -> str | None:
    """The libpq URI of a `postgresql://` (or `postgresql+psycopg://`) URL; None otherwise."""
    for scheme in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme):]
    return None


def stored_time(at: datetime) -> str:
    """A time as the registry stores it on SQLite: naive UTC, microseconds always written."""
    return rules.utc(at).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two databases, for the statements the repositories write in
    SQLite's spelling (`?` and `:name` parameters)."""

    name: str
    no_limit: int | None  # the LIMIT that means "all rows"
    lock_row: str  # appended to a SELECT of a row the transaction will update

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"

    def time(self, at: datetime) -> Any:
        return rules.utc(at) if self.is_postgres else stored_time(at)

    def read_time(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def sql(self, statement: str) -> str:
        return _pyformat(statement) if self.is_postgres else statement


SQLITE = Dialect("sqlite", no_limit=-1, lock_row="")
POSTGRES = Dialect("postgresql", no_limit=None, lock_row=" FOR UPDATE")

_PLACEHOLDER = re.compile(r"\?|(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=512)
def _pyformat(statement: str) -> str:
    """SQLite's `?` and `:name` as psycopg's `%s` and `%(name)s` (a literal % doubled)."""
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group(0) == "?" else f"%({m.group(1)})s",
                            statement.replace("%", "%%"))


def encode(dialect: Dialect, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Column values of `table` as the driver's parameters."""
    times, jsons = TIMES.get(table, _NONE), JSONS.get(table, _NONE)
    encoded: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            encoded[name] = None
        elif name in jsons:
            encoded[name] = rules.dump_json(value)
        elif name in times:
            encoded[name] = dialect.time(value)
        elif isinstance(value, bool) and not dialect.is_postgres:
            encoded[name] = int(value)
        else:
            encoded[name] = value
    return encoded


def decode(dialect: Dialect, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of `table` as the repositories read it: times aware, JSON parsed."""
    times, jsons = TIMES.get(table, _NONE), JSONS.get(table, _NONE)
    bools = BOOLS.get(table, _NONE)
    decoded: dict[str, Any] = {}
    for name, value in row.items():
        if value is not None:
            if name in jsons:
                value = json.loads(value)
            elif name in times:
                value = dialect.read_time(value)
            elif name in bools:
                value = bool(value)
        decoded[name] = value
    return decoded


def quoted(names: Sequence[str]) -> str:
    """Column names quoted: several (`end`, `trigger`, `key`, `before`) are SQL keywords."""
    return ", ".join(f'"{name}"' for name in names)


def insert_sql(table: str, names: Sequence[str]) -> str:
    return (f'INSERT INTO "{table}" ({quoted(names)}) '
            f'VALUES ({", ".join(":" + name for name in names)})')


def upsert_sql(table: str, names: Sequence[str], keys: Sequence[str]) -> str:
    """INSERT, or on a conflicting key UPDATE every other column to the new values."""
    changes = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n not in keys)
    return f"{insert_sql(table, names)} ON CONFLICT ({quoted(keys)}) DO UPDATE SET {changes}"


# -- SQLite ----------------------------------------------------------------------------------

def connect_sqlite(target: SqliteTarget) -> sqlite3.Connection:
    """A connection to the registry file (its folder created) or memory database; transactions
    are begun by `DbTx`, never by the sqlite3 module."""
    if not target.in_memory and not target.uri:
        Path(target.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target.database, timeout=target.timeout_s, isolation_level=None,
                           check_same_thread=False, uri=target.uri)
    conn.execute(f"PRAGMA busy_timeout = {int(target.timeout_s * 1000)}")
    if not target.in_memory:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def begin_immediate(conn: sqlite3.Connection, *, timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """BEGIN IMMEDIATE, waiting for another writer in steps of a fraction of a millisecond.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ms ... between tries, so a replica that
    wants the registry just after a short write of the rollback command waits up to 8 ms for a
    lock freed after one: the longest part of a switch. The registry's transactions are short,
    so polling the lock finely costs little and the switch follows the commit at once. The
    connection's busy timeout is 0 for this statement only (a write lock is all it waits for).
    """
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline, pause = time.monotonic() + timeout_s, 0.0002
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def translate_sqlite(error: sqlite3.Error, url: str) -> LastGoodError:
    """The lastgood error for a sqlite3 error."""
    text = _first_line(error)
    if isinstance(error, sqlite3.IntegrityError):
        return rules.refused_change(text)
    if "database is locked" in text or "database is busy" in text:
        return rules.busy_database()
    if "unable to open database file" in text or "disk I/O error" in text:
        return rules.unreachable_database(url)
    return rules.database_error(text)


# -- PostgreSQL ------------------------------------------------------------------------------

# SQLSTATE classes: 08 connection exception, 57P0x server shutting down, 53 insufficient
# resources: the server is not there for us. 40001/40P01: a retryable abort.
_UNREACHABLE_STATES = ("08", "57P", "53")


def connect_postgres(dsn: str) -> Any:
    import psycopg  # only PostgreSQL registries pay for the driver

    return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S,
                           options=f"-c lock_timeout={int(BUSY_TIMEOUT_S * 1000)}")


def translate_postgres(error: Exception, shown_url: str) -> LastGoodError:
    """The lastgood error for a psycopg error."""
    import psycopg

    state, text = str(getattr(error, "sqlstate", "") or ""), _first_line(error)
    if isinstance(error, psycopg.IntegrityError):
        return rules.refused_change(text, state)
    if state == "55P03":
        return rules.busy_database()
    if state.startswith(("40001", "40P01")):
        return rules.transient_abort(text)
    if (state.startswith(_UNREACHABLE_STATES) or isinstance(error, psycopg.InterfaceError)
            or (isinstance(error, psycopg.OperationalError) and not state)):
        return rules.unreachable_database(shown_url)
    return rules.database_error(text)


def masked(url: str) -> str:
    """The URL with any password masked, fit for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


# -- both --------------------------------------------------------------------------------------

class DbTx:
    """A unit of work's connection: the transaction begun on first use, errors translated."""

    def __init__(self, conn: Any, url: str, dialect: Dialect) -> None:
        self.conn = conn
        self.url = url
        self.dialect = dialect
        self.changed: set[str] = set()  # envs whose desired state this transaction moved

    @property
    def is_postgres(self) -> bool:
        return self.dialect.is_postgres

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Run a block, re-raising any driver error as the matching lastgood error."""
        with translated(self.url, self.dialect):
            yield

    def execute(self, sql: str, params: Params = ()) -> Any:
        """Run one statement in the current transaction (beginning one if needed): a cursor."""
        with self.translated():
            if self.dialect.is_postgres:
                return self.conn.execute(self.dialect.sql(sql), params or None)
            if not self.conn.in_transaction:
                begin_immediate(self.conn)
            return self.conn.execute(sql, params)

    def time(self, at: datetime) -> Any:
        """A time as a parameter of this database."""
        return self.dialect.time(at)

    def rows(self, table: str, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Every row of a query over `table`, decoded."""
        cursor = self.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [decode(self.dialect, table, dict(zip(names, values, strict=True)))
                for values in cursor.fetchall()]

    def row(self, table: str, sql: str, params: Params = ()) -> dict[str, Any] | None:
        found = self.rows(table, sql, params)
        return found[0] if found else None

    def value(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None."""
        found = self.execute(sql, params).fetchone()
        return None if found is None else found[0]

    def insert(self, table: str, row: Mapping[str, Any], *, returning: str = "") -> Any:
        """Insert one row; with `returning`, the value of that column (as the row was stored)."""
        sql = insert_sql(table, list(row)) + (f' RETURNING "{returning}"' if returning else "")
        cursor = self.execute(sql, encode(self.dialect, table, row))
        return cursor.fetchone()[0] if returning else None

    def upsert(self, table: str, row: Mapping[str, Any], keys: Sequence[str]) -> None:
        self.execute(upsert_sql(table, list(row), keys), encode(self.dialect, table, row))


@contextmanager
def translated(url: str, dialect: Dialect) -> Iterator[None]:
    """Run a block, re-raising any driver error as the matching lastgood error."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate_sqlite(exc, url) from exc
    except Exception as exc:
        if dialect.is_postgres and _is_psycopg(exc):
            raise translate_postgres(exc, masked(url)) from exc
        raise


def _is_psycopg(error: Exception) -> bool:
    import psycopg

    return isinstance(error, psycopg.Error)
