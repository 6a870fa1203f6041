"""The metric history over SQLAlchemy (the in-memory SQLite registry): `HistoryRepository`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select

from lastgood.adapters.history_rows import COLUMNS, checked_batch, compact, to_point
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import metric_history as h
from lastgood.domain.history import HistoryPoint, Tier

_COLUMNS = [h.c[name] for name in COLUMNS]


class SqlHistory:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, points: Sequence[HistoryPoint]) -> None:
        self._insert(checked_batch(points))

    def read(self, model: str, env: str, *, since_s: int, until_s: int,
             limit: int) -> list[HistoryPoint]:
        query = (select(*_COLUMNS)
                 .where(h.c.model == model, h.c.env == env, h.c.at_s >= since_s,
                        h.c.at_s < until_s)
                 .order_by(h.c.at_s, h.c.id).limit(limit))
        rows = [dict(r._mapping) for r in self._tx.execute(query)]
        return [p for p in map(to_point, rows) if p is not None]

    def compact(self, retention: Sequence[Tier], *, now_s: int, batch: int) -> int:
        return compact(retention, now_s=now_s, batch=batch, take=self._take, put=self._insert)

    def _take(self, resolution_s: int, cutoff_s: int, batch: int) -> list[Mapping[str, Any]]:
        # Delete-and-return: only the compactor that deleted a point rolls it up.
        ids = (select(h.c.id).where(h.c.resolution_s == resolution_s, h.c.at_s < cutoff_s)
               .order_by(h.c.at_s).limit(batch).scalar_subquery())
        statement = delete(h).where(h.c.id.in_(ids)).returning(*_COLUMNS)
        return [dict(r._mapping) for r in self._tx.execute(statement)]

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._tx.execute(insert(h), rows)  # type: ignore[arg-type]
