"""The registry over a plain DB-API connection: a SQLite file through the standard library's
sqlite3, PostgreSQL through psycopg.

The same tables, rules and errors as the SQLAlchemy adapter (`lastgood.adapters.sql`), which
owns the schema and its migrations, without importing SQLAlchemy: a short command such as
`lastgood status` or `rollback` would spend more time importing SQLAlchemy than doing its work.

    registry = open_dbapi_registry("sqlite:///.lastgood/registry.db")  # None for other URLs
    with registry() as uow:
        ...
        uow.commit()
"""

from __future__ import annotations

from lastgood.adapters.dbapi.connection import file_path, postgres_dsn
from lastgood.adapters.dbapi.uow import (
    DbRegistry,
    DbUnitOfWork,
    postgres_registry,
    sqlite_registry,
)

__all__ = ["DbRegistry", "DbUnitOfWork", "open_dbapi_registry"]


def open_dbapi_registry(url: str) -> DbRegistry | None:
    """The registry of a `sqlite:///PATH` file or a `postgresql://` database; None for any
    other URL (a memory database, SQLite with options), which SQLAlchemy serves."""
    path = file_path(url)
    if path is not None:
        return sqlite_registry(url, path)
    dsn = postgres_dsn(url)
    return None if dsn is None else postgres_registry(url, dsn)
