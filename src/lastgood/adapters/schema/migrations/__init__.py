"""Alembic migrations of the registry schema, run at open by `lastgood.adapters.schema.migrate`.

Developers add a revision with (from the repository root):

    alembic -c src/lastgood/adapters/schema/migrations/alembic.ini \
        -x url=sqlite:///dev.db revision -m "what changes"
"""
