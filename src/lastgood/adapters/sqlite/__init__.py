"""The registry on a SQLite file through the standard library's sqlite3.

The same tables, rules and errors as the SQLAlchemy adapter (`lastgood.adapters.sql`), which
owns the schema and its migrations, without importing SQLAlchemy: a short command such as
`lastgood status` or `rollback` spends more time importing SQLAlchemy than doing its work.

    registry = open_lite_registry("sqlite:///.lastgood/registry.db")  # None for other URLs
    with registry() as uow:
        ...
        uow.commit()
"""

from __future__ import annotations

from lastgood.adapters.sqlite.connection import file_path
from lastgood.adapters.sqlite.uow import LiteRegistry, LiteUnitOfWork

__all__ = ["LiteRegistry", "LiteUnitOfWork", "file_path", "open_lite_registry"]


def open_lite_registry(url: str) -> LiteRegistry | None:
    """The registry of a plain `sqlite:///PATH` URL; None for any other URL."""
    path = file_path(url)
    return None if path is None else LiteRegistry(url, path)
