"""Run the Alembic migrations shipped in `migrations/` programmatically: `upgrade head`.

Concurrent first starts are serialised: BEGIN IMMEDIATE on SQLite, an advisory lock on
PostgreSQL, so only one process creates the tables and the others find them at head.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from lastgood.adapters.registry_rules import SCHEMA_REVISION

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = SCHEMA_REVISION
"""The newest revision in migrations/versions (a test keeps the two equal)."""
_ADVISORY_LOCK_KEY = 0x6C617374_676F6F64 >> 1  # "lastgood", fits a signed bigint


def alembic_config() -> Config:
    """An Alembic config pointing at the shipped migrations (no alembic.ini needed)."""
    from alembic.config import Config  # imported when needed: it costs a third of a second

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def is_at_head(engine: Engine) -> bool:
    """Whether the database is already migrated to HEAD_REVISION (one cheap query)."""
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:  # no table yet, or unreachable: `upgrade` will say which
        return False
    return found == [HEAD_REVISION]


def upgrade(engine: Engine) -> None:
    """Bring the database at `engine` to the newest schema, in one transaction."""
    if is_at_head(engine):
        return  # the common case; importing and running Alembic would cost a second
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
