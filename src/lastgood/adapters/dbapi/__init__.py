"""The registry over a plain DB-API connection: a SQLite file through the standard library's
sqlite3, PostgreSQL through psycopg.

The one registry adapter at run time: SQLite files, SQLite in memory and SQLite URLs with
options, and PostgreSQL. The schema and its migrations are `lastgood.adapters.schema`'s
(SQLAlchemy and Alembic); this adapter never imports them: a short command such as
`lastgood status` or `rollback` would spend more time importing SQLAlchemy than doing its work.

    registry = open_dbapi_registry("sqlite:///.lastgood/registry.db")
    with registry() as uow:
        ...
        uow.commit()
"""

from __future__ import annotations

from lastgood.adapters.dbapi.connection import masked, postgres_dsn, sqlite_target
from lastgood.adapters.dbapi.uow import (
    DbRegistry,
    DbUnitOfWork,
    postgres_registry,
    sqlite_registry,
)
from lastgood.domain.errors import InvalidInput
from lastgood.ports import ChangeAnnouncer

__all__ = ["DbRegistry", "DbUnitOfWork", "open_dbapi_registry"]


def open_dbapi_registry(url: str, *, announcer: ChangeAnnouncer | None = None) -> DbRegistry:
    """The registry of a `sqlite:` or `postgresql:` URL (nothing is read yet); any other URL
    is refused with the forms it could take. `announcer` wakes the replicas of a SQLite
    registry after each commit that moved a desired state."""
    target = sqlite_target(url)
    if target is not None:
        return sqlite_registry(url, target, announcer=announcer)
    dsn = postgres_dsn(url)
    if dsn is None:
        raise InvalidInput(f"unsupported registry database URL {masked(url)!r}",
                           fix="use sqlite:///PATH or postgresql://USER@HOST/DB in "
                               "LASTGOOD_DB_URL")
    return postgres_registry(url, dsn)
