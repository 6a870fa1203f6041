"""`open_registry(url)`: the SQL registry as a UnitOfWorkFactory."""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Engine

from lastgood.adapters.sql.errors import safe_url, translated
from lastgood.adapters.sql.migrate import upgrade
from lastgood.adapters.sql.session import make_engine
from lastgood.adapters.sql.uow import SqlUnitOfWork

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


class SqlRegistry:
    """A registry database; calling it opens a new unit of work (it is a UnitOfWorkFactory)."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._migrated = False
        # an in-memory SQLite database lives and dies with its engine, not with its URL
        self._shared = not (engine.dialect.name == "sqlite"
                            and (engine.url.database or ":memory:") == ":memory:")
        # A registry dropped without dispose() still closes its pooled connections; otherwise
        # psycopg warns about each one whenever the garbage collector gets to it.
        self._finalizer = weakref.finalize(self, engine.dispose)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self)

    def __repr__(self) -> str:
        return f"SqlRegistry({safe_url(self.url)!r})"

    def migrate(self) -> None:
        """Bring the schema to head, once per process per URL (cheap after the first time)."""
        if self._migrated:
            return
        with _migrate_lock:
            if not (self._shared and self.url in _migrated):
                with translated(self.url):
                    upgrade(self.engine)
            if self._shared:
                _migrated.add(self.url)
            self._migrated = True

    def dispose(self) -> None:
        """Close every pooled connection (at shutdown, or in a child after fork)."""
        self.engine.dispose()


def open_registry(url: str, *, migrate: bool = True) -> SqlRegistry:
    """The registry at `url` (sqlite:///PATH or postgresql://...), its schema at head.

    Creates a SQLite file's directory. With `migrate=False` nothing touches the database until
    the first unit of work, which migrates then, so a server can start while the database is
    down. Raises TransientError (with the URL, password masked) when it cannot be reached.
    """
    registry = SqlRegistry(url, make_engine(url))
    if migrate:
        registry.migrate()
    return registry
