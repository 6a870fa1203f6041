"""SQLite through the standard library: connections, the stored forms of values, `LiteTx`.

The same file and tables as the SQLAlchemy adapter, which creates them (its migrations) and
shares every rule: WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE before a transaction's
first statement, so concurrent writers queue instead of failing on a lock upgrade. Values are
stored exactly as that adapter stores them on SQLite: times as naive UTC text with microseconds,
JSON as the exact text written (`registry_rules.dump_json`), booleans as 0/1. So either adapter
reads what the other wrote, and the contract tests hold both to it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lastgood.adapters import registry_rules as rules
from lastgood.domain.errors import LastGoodError

BUSY_TIMEOUT_S = 30.0

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


def file_path(url: str) -> str | None:
    """The database file of a plain `sqlite:///PATH` URL; None for any other URL (another
    database, in memory, a driver or query options): those go to the SQLAlchemy adapter."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix):]
    if not path or path == ":memory:" or path.startswith("file:") or "?" in path:
        return None
    return path


def stored_time(at: datetime) -> str:
    """A time as the registry stores it on SQLite: naive UTC, microseconds always written."""
    return rules.utc(at).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def read_time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def encode(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Column values of `table` as sqlite3 parameters."""
    times, jsons = TIMES.get(table, _NONE), JSONS.get(table, _NONE)
    encoded: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            encoded[name] = None
        elif name in jsons:
            encoded[name] = rules.dump_json(value)
        elif name in times:
            encoded[name] = stored_time(value)
        elif isinstance(value, bool):
            encoded[name] = int(value)
        else:
            encoded[name] = value
    return encoded


def decode(table: str, row: sqlite3.Row) -> dict[str, Any]:
    """A row of `table` as the SQLAlchemy adapter reads it: times aware, JSON parsed."""
    times, jsons = TIMES.get(table, _NONE), JSONS.get(table, _NONE)
    bools = BOOLS.get(table, _NONE)
    decoded: dict[str, Any] = {}
    for name in row.keys():  # noqa: SIM118 -- iterating a sqlite3.Row gives its values
        value = row[name]
        if value is not None:
            if name in jsons:
                value = json.loads(value)
            elif name in times:
                value = read_time(value)
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


def connect(path: str) -> sqlite3.Connection:
    """A connection to the registry file (its folder created), configured as the other adapter
    configures its own; transactions are begun by `LiteTx`, never by the sqlite3 module."""
    if path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def translate(error: sqlite3.Error, url: str) -> LastGoodError:
    """The lastgood error for a sqlite3 error (the same ones the SQLAlchemy adapter gives)."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    if isinstance(error, sqlite3.IntegrityError):
        return rules.refused_change(text)
    if "database is locked" in text or "database is busy" in text:
        return rules.busy_database()
    if "unable to open database file" in text or "disk I/O error" in text:
        return rules.unreachable_database(url)
    return rules.database_error(text)


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Run a block, re-raising any sqlite3 error as the matching lastgood error."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, url) from exc


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


class LiteTx:
    """A unit of work's connection: BEGIN IMMEDIATE on first use, errors translated."""

    is_postgres = False

    def __init__(self, conn: sqlite3.Connection, url: str) -> None:
        self.conn = conn
        self.url = url

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()
                ) -> sqlite3.Cursor:
        """Run one statement in the current transaction (beginning one if needed)."""
        with translated(self.url):
            if not self.conn.in_transaction:
                begin_immediate(self.conn)
            return self.conn.execute(sql, params)

    def rows(self, table: str, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()
             ) -> list[dict[str, Any]]:
        """Every row of a query over `table`, decoded."""
        return [decode(table, row) for row in self.execute(sql, params).fetchall()]

    def row(self, table: str, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()
            ) -> dict[str, Any] | None:
        found = self.execute(sql, params).fetchone()
        return None if found is None else decode(table, found)

    def value(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        found = self.execute(sql, params).fetchone()
        return None if found is None else found[0]

    def insert(self, table: str, row: Mapping[str, Any]) -> sqlite3.Cursor:
        return self.execute(insert_sql(table, list(row)), encode(table, row))

    def upsert(self, table: str, row: Mapping[str, Any], keys: Sequence[str]) -> sqlite3.Cursor:
        return self.execute(upsert_sql(table, list(row), keys), encode(table, row))
