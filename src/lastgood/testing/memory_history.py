"""The metric history of the in-memory registry: a list of points, the same rules as the SQL
adapters (the batch limit, one tier per reading, its order and limit, the shared compaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lastgood.adapters.history_rows import checked_batch, compact, point_row, to_point
from lastgood.domain.history import HistoryPoint, StoredPoint, Tier, stored


class MemoryHistory:
    def __init__(self, points: list[HistoryPoint]) -> None:
        self._points = points  # the unit of work's copy, in insertion order

    def add(self, points: Sequence[HistoryPoint]) -> None:
        checked_batch(points)
        self._points.extend(points)

    def read(self, model: str, env: str, *, resolution_s: int, since_s: int, until_s: int,
             limit: int) -> list[StoredPoint]:
        found = [p for p in self._points if p.model == model and p.env == env
                 and p.resolution_s == resolution_s and since_s <= p.at_s < until_s]
        # stable: insertion order within a bucket, as the SQL adapters' id order
        return [stored(p) for p in sorted(found, key=lambda p: p.at_s)[:limit]]

    def compact(self, retention: Sequence[Tier], *, now_s: int, batch: int) -> int:
        return compact(retention, now_s=now_s, batch=batch, store=self)

    def _tier(self, resolution_s: int) -> list[HistoryPoint]:
        return [p for p in self._points if p.resolution_s == resolution_s]

    def newest(self, resolution_s: int) -> int | None:
        return max((p.at_s for p in self._tier(resolution_s)), default=None)

    def oldest_after(self, resolution_s: int, at_s: int) -> int | None:
        return min((p.at_s for p in self._tier(resolution_s) if p.at_s >= at_s), default=None)

    def rows_between(self, resolution_s: int, start_s: int, end_s: int) -> list[Any]:
        return [point_row(p) for p in self._tier(resolution_s) if start_s <= p.at_s < end_s]

    def drop_before(self, resolution_s: int, cutoff_s: int, batch: int) -> int:
        old = sorted((p for p in self._tier(resolution_s) if p.at_s < cutoff_s),
                     key=lambda p: p.at_s)[:batch]
        gone = {id(p) for p in old}
        self._points[:] = [p for p in self._points if id(p) not in gone]
        return len(old)

    def put(self, rows: list[dict[str, Any]]) -> None:
        self._points.extend(p for p in map(to_point, rows) if p is not None)
