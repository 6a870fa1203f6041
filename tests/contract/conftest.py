"""The registry under contract: the same tests on memory, SQLite (a temp file, through SQLAlchemy
and through the standard library's sqlite3) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.adapters.sql import SqlRegistry, open_registry
from lastgood.adapters.sqlite import LiteRegistry
from lastgood.bootstrap.services import open_registry as open_any_registry
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing.memory import MemoryRegistry

BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("lite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
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
    if request.param == "lite":
        lite = open_any_registry(request.getfixturevalue("sqlite_url"))
        assert isinstance(lite, LiteRegistry)  # the composition root's choice for a SQLite file
        try:
            yield lite
        finally:
            lite.dispose()
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
