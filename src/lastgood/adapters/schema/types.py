"""Column types that keep domain values exact across SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator

from lastgood.adapters.registry_rules import dump_json, utc


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, microseconds kept, on both dialects.

    SQLite has no time zones, so values are stored as naive UTC and made aware again on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = utc(value)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Json(TypeDecorator[Any]):
    """JSON kept as the exact text written.

    Not PostgreSQL's json/jsonb: jsonb rewrites numbers (-0.0) and both reject NaN, and an event's
    hash covers its evidence byte for byte, so the column must give back what was sealed.
    SQL NULL stands for None.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else dump_json(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)
