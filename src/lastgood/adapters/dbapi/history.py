"""The metric history over DB-API (SQLite file, PostgreSQL): `HistoryRepository`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lastgood.adapters.dbapi.connection import DbTx, insert_sql
from lastgood.adapters.history_rows import COLUMNS, checked_batch, compact
from lastgood.domain.history import HistoryPoint, StoredPoint, Tier

_SELECTED = ", ".join(COLUMNS)
_READ = ("SELECT version, replica, at_s, requests, errors, labelled, correct, p50_s, p95_s, "
         "p99_s, latency, predictions, custom FROM metric_history WHERE model = ? AND env = ? "
         "AND resolution_s = ? AND at_s >= ? AND at_s < ? ORDER BY at_s, id LIMIT ?")
_BETWEEN = (f"SELECT {_SELECTED} FROM metric_history WHERE resolution_s = ? AND at_s >= ? "
            "AND at_s < ?")
_DROP = ("DELETE FROM metric_history WHERE id IN (SELECT id FROM metric_history "
         "WHERE resolution_s = ? AND at_s < ? ORDER BY at_s LIMIT ?)")


class DbHistory:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def add(self, points: Sequence[HistoryPoint]) -> None:
        self.put(checked_batch(points))

    def read(self, model: str, env: str, *, resolution_s: int, since_s: int, until_s: int,
             limit: int) -> list[StoredPoint]:
        cursor = self._tx.execute(_READ, (model, env, resolution_s, since_s, until_s, limit))
        # straight from the row tuples: a week's reading builds ~1000 of them
        return [StoredPoint(model, env, version, replica, resolution_s, at_s,
                            None if requests is None else (errors, requests),
                            None if labelled is None else (correct, labelled),
                            None if p50 is None else (p50, p95, p99),
                            latency, predictions, custom)
                for (version, replica, at_s, requests, errors, labelled, correct, p50, p95, p99,
                     latency, predictions, custom) in cursor.fetchall()]

    def compact(self, retention: Sequence[Tier], *, now_s: int, batch: int) -> int:
        return compact(retention, now_s=now_s, batch=batch, store=self)

    # -- the compaction's TierStore --------------------------------------------------------

    def newest(self, resolution_s: int) -> int | None:
        found = self._tx.value("SELECT MAX(at_s) FROM metric_history WHERE resolution_s = ?",
                               (resolution_s,))
        return None if found is None else int(found)

    def oldest_after(self, resolution_s: int, at_s: int) -> int | None:
        found = self._tx.value("SELECT MIN(at_s) FROM metric_history WHERE resolution_s = ? "
                               "AND at_s >= ?", (resolution_s, at_s))
        return None if found is None else int(found)

    def rows_between(self, resolution_s: int, start_s: int, end_s: int) -> list[Any]:
        return self._fetch(_BETWEEN, (resolution_s, start_s, end_s))

    def drop_before(self, resolution_s: int, cutoff_s: int, batch: int) -> int:
        return int(self._tx.execute(_DROP, (resolution_s, cutoff_s, batch)).rowcount)

    def put(self, rows: list[dict[str, Any]]) -> None:
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

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Mapping[str, Any]]:
        cursor = self._tx.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
