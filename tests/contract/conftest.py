"""The registry under contract: the same tests on memory, SQLite (a temp file) and PostgreSQL,
each SQL database through SQLAlchemy and through the DB-API adapter (sqlite3, psycopg)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.adapters.dbapi import DbRegistry
from lastgood.adapters.sql import SqlRegistry, open_registry
from lastgood.bootstrap.services import open_registry as open_any_registry
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing.memory import MemoryRegistry

BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("sqlite-dbapi"),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("postgres-dbapi", marks=pytest.mark.postgres),
]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite registry file in a directory that does not exist yet."""
    return f"sqlite:///{tmp_path / 'home' / 'registry.db'}"


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest) -> Iterator[UnitOfWorkFactory]:
    """A fresh, empty registry of each kind."""
    if request.param == "memory":
        yield MemoryRegistry()
        return
    if request.param.endswith("-dbapi"):
        fixture = "sqlite_url" if request.param.startswith("sqlite") else "pg_url"
        plain = open_any_registry(request.getfixturevalue(fixture))
        assert isinstance(plain, DbRegistry)  # the composition root's choice for either
        try:
            yield plain
        finally:
            plain.dispose()
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    sql = open_registry(url)
    try:
        yield sql
    finally:
        sql.dispose()


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
def sql_registry(request: pytest.FixtureRequest) -> Iterator[SqlRegistry]:
    """A fresh SQL registry, SQLite and PostgreSQL, for the SQL-only tests."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    sql = open_registry(url)
    try:
        yield sql
    finally:
        sql.dispose()
