"""SQLAlchemy registry: SQLite by default, PostgreSQL for scale.

    registry = open_registry("sqlite:///.lastgood/registry.db")
    with registry() as uow:
        ...
        uow.commit()
    registry.dispose()
"""

from lastgood.adapters.sql.registry import SqlRegistry, open_registry
from lastgood.adapters.sql.session import NOTIFY_CHANNEL
from lastgood.adapters.sql.uow import SqlUnitOfWork

__all__ = ["NOTIFY_CHANNEL", "SqlRegistry", "SqlUnitOfWork", "open_registry"]
