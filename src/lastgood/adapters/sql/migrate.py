"""Run the Alembic migrations shipped in `migrations/` programmatically: `upgrade head`.

Concurrent first starts are serialised: BEGIN IMMEDIATE on SQLite, an advisory lock on
PostgreSQL, so only one process creates the tables and the others find them at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_ADVISORY_LOCK_KEY = 0x6C617374_676F6F64 >> 1  # "lastgood", fits a signed bigint


def alembic_config() -> Config:
    """An Alembic config pointing at the shipped migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database at `engine` to the newest schema, in one transaction."""
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
