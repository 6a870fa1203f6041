"""The registry under contract: the same tests on the memory fake and on the one registry
adapter (DB-API) over a SQLite file, SQLite in memory and PostgreSQL, each opened as
`lastgood serve` opens it (`bootstrap.services.open_registry`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.bootstrap.services import open_registry
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing.memory import MemoryRegistry

BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("sqlite-memory"),
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
    url = {"sqlite": lambda: request.getfixturevalue("sqlite_url"),
           "sqlite-memory": lambda: "sqlite://",
           "postgres": lambda: request.getfixturevalue("pg_url")}[request.param]()
    opened = open_registry(url)
    try:
        yield opened
    finally:
        opened.dispose()
