"""SQLAlchemy registry: SQLite by default, PostgreSQL for scale."""
