"""The metric history over SQLAlchemy (the in-memory SQLite registry): `HistoryRepository`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select

from lastgood.adapters.history_rows import COLUMNS, checked_batch, compact, to_stored
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import metric_history as h
from lastgood.domain.history import HistoryPoint, StoredPoint, Tier

_COLUMNS = [h.c[name] for name in COLUMNS]


class SqlHistory:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, points: Sequence[HistoryPoint]) -> None:
        self.put(checked_batch(points))

    def read(self, model: str, env: str, *, resolution_s: int, since_s: int, until_s: int,
             limit: int) -> list[StoredPoint]:
        query = (select(*_COLUMNS)
                 .where(h.c.model == model, h.c.env == env, h.c.resolution_s == resolution_s,
                        h.c.at_s >= since_s, h.c.at_s < until_s)
                 .order_by(h.c.at_s, h.c.id).limit(limit))
        rows = [dict(r._mapping) for r in self._tx.execute(query)]
        return [p for p in map(to_stored, rows) if p is not None]

    def compact(self, retention: Sequence[Tier], *, now_s: int, batch: int) -> int:
        return compact(retention, now_s=now_s, batch=batch, store=self)

    # -- the compaction's TierStore --------------------------------------------------------

    def newest(self, resolution_s: int) -> int | None:
        found = self._tx.execute(select(func.max(h.c.at_s))
                                 .where(h.c.resolution_s == resolution_s)).scalar()
        return None if found is None else int(found)

    def oldest_after(self, resolution_s: int, at_s: int) -> int | None:
        found = self._tx.execute(select(func.min(h.c.at_s)).where(
            h.c.resolution_s == resolution_s, h.c.at_s >= at_s)).scalar()
        return None if found is None else int(found)

    def rows_between(self, resolution_s: int, start_s: int, end_s: int) -> list[Any]:
        query = select(*_COLUMNS).where(h.c.resolution_s == resolution_s, h.c.at_s >= start_s,
                                        h.c.at_s < end_s)
        return [dict(r._mapping) for r in self._tx.execute(query)]

    def drop_before(self, resolution_s: int, cutoff_s: int, batch: int) -> int:
        ids = (select(h.c.id).where(h.c.resolution_s == resolution_s, h.c.at_s < cutoff_s)
               .order_by(h.c.at_s).limit(batch).scalar_subquery())
        return int(self._tx.execute(delete(h).where(h.c.id.in_(ids))).rowcount)

    def put(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._tx.execute(insert(h), rows)  # type: ignore[arg-type]
