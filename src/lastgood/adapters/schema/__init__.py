"""The registry's schema: its tables and column types (SQLAlchemy Core), the Alembic
migrations, and `migrate(url)`. Nothing here runs after a database is at head: the registry
adapter (`lastgood.adapters.dbapi`) reads and writes the tables over plain DB-API."""

from lastgood.adapters.schema.migrate import HEAD_REVISION, migrate
from lastgood.adapters.schema.tables import metadata

__all__ = ["HEAD_REVISION", "metadata", "migrate"]
