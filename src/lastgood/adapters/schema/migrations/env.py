"""Alembic environment: migrate the connection lastgood hands over, or a `-x url=...` one."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from lastgood.adapters.schema.migrate import engine_for


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        run(given)
        return
    url = context.get_x_argument(as_dictionary=True).get("url", "")
    if not url:
        raise SystemExit("pass the database with -x url=sqlite:///PATH")
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()


main()
