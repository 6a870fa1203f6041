"""The metric history over DB-API (SQLite file, PostgreSQL): `HistoryRepository`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lastgood.adapters.dbapi.connection import DbTx, insert_sql
from lastgood.adapters.history_rows import COLUMNS, checked_batch, compact, to_point
from lastgood.domain.history import HistoryPoint, Tier

_SELECT = ("SELECT model, env, version, replica, resolution_s, at_s, summary "
           "FROM metric_history WHERE model = ? AND env = ? AND at_s >= ? AND at_s < ? "
           "ORDER BY at_s, id LIMIT ?")
# The rows a compactor deletes are the rows it rolls up: a second compactor deleting the same
# ids gets none of them back, so no point is counted twice.
_TAKE = ("DELETE FROM metric_history WHERE id IN (SELECT id FROM metric_history "
         "WHERE resolution_s = ? AND at_s < ? ORDER BY at_s LIMIT ?) "
         "RETURNING model, env, version, replica, resolution_s, at_s, summary")


class DbHistory:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def add(self, points: Sequence[HistoryPoint]) -> None:
        self._insert(checked_batch(points))

    def read(self, model: str, env: str, *, since_s: int, until_s: int,
             limit: int) -> list[HistoryPoint]:
        rows = self._fetch(_SELECT, (model, env, since_s, until_s, limit))
        return [p for p in map(to_point, rows) if p is not None]

    def compact(self, retention: Sequence[Tier], *, now_s: int, batch: int) -> int:
        return compact(retention, now_s=now_s, batch=batch,
                       take=lambda res, cutoff, n: self._fetch(_TAKE, (res, cutoff, n)),
                       put=self._insert)

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Mapping[str, Any]]:
        cursor = self._tx.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self._tx.execute("SELECT 1")  # begins the transaction (BEGIN IMMEDIATE on SQLite)
        sql = self._tx.dialect.sql(insert_sql("metric_history", COLUMNS))
        with self._tx.translated():
            cursor = self._tx.conn.cursor()
            try:
                cursor.executemany(sql, rows)
            finally:
                cursor.close()
