"""Alembic migrations of the registry schema, run at open by `lastgood.adapters.sql.migrate`.

Developers add a revision with (from the repository root):

    alembic -c src/lastgood/adapters/sql/migrations/alembic.ini \
        -x url=sqlite:///dev.db revision -m "what changes"
"""
