"""The metric history of the in-memory registry: a list of points, the same rules as the SQL
adapters (the batch limit, the reading order and limit, compaction in bounded batches)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lastgood.adapters.history_rows import checked_batch, compact, point_row, to_point
from lastgood.domain.history import HistoryPoint, Tier


class MemoryHistory:
    def __init__(self, points: list[HistoryPoint]) -> None:
        self._points = points  # the unit of work's copy, in insertion order

    def add(self, points: Sequence[HistoryPoint]) -> None:
        checked_batch(points)
        self._points.extend(points)

    def read(self, model: str, env: str, *, since_s: int, until_s: int,
             limit: int) -> list[HistoryPoint]:
        found = [p for p in self._points
                 if p.model == model and p.env == env and since_s <= p.at_s < until_s]
        return sorted(found, key=lambda p: p.at_s)[:limit]  # stable: insertion order within

    def compact(self, retention: Sequence[Tier], *, now_s: int, batch: int) -> int:
        return compact(retention, now_s=now_s, batch=batch, take=self._take, put=self._put)

    def _take(self, resolution_s: int, cutoff_s: int, batch: int) -> list[Mapping[str, Any]]:
        old = sorted((p for p in self._points
                      if p.resolution_s == resolution_s and p.at_s < cutoff_s),
                     key=lambda p: p.at_s)[:batch]
        taken = {id(p) for p in old}
        self._points[:] = [p for p in self._points if id(p) not in taken]
        return [point_row(p) for p in old]

    def _put(self, rows: list[dict[str, Any]]) -> None:
        self._points.extend(p for p in map(to_point, rows) if p is not None)
