"""Metric history rows for every registry adapter: a point <-> its columns, and the compaction
every adapter runs over its table (`TierStore`), so the implementations cannot drift apart."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from lastgood.domain.errors import InvalidInput
from lastgood.domain.history import (
    MAX_BATCH,
    HistoryPoint,
    StoredPoint,
    Tier,
    rollup,
    rollup_window,
    summary_from_row,
    summary_to_row,
)

log = logging.getLogger("lastgood.history")

COLUMNS = ("model", "env", "version", "replica", "resolution_s", "at_s", "summary")
ROLLUP_BUCKETS = 10
"""Coarse buckets one pass rolls up per tier: a pass stays small after a long pause too."""


def point_row(point: HistoryPoint) -> dict[str, Any]:
    """The columns of a point (its summary as compact JSON text)."""
    return {"model": point.model, "env": point.env, "version": point.version,
            "replica": point.replica, "resolution_s": point.resolution_s, "at_s": point.at_s,
            "summary": json.dumps(summary_to_row(point.summary), separators=(",", ":"))}


def to_point(row: Mapping[str, Any]) -> HistoryPoint | None:
    """The point of a row; None (logged) for a damaged one, which a reading skips."""
    try:
        summary = summary_from_row(json.loads(row["summary"]))
    except (InvalidInput, ValueError) as exc:
        log.warning("skipping a damaged history point of %s/%s: %s", row["model"], row["env"],
                    exc)
        return None
    return HistoryPoint(str(row["model"]), str(row["env"]), int(row["version"]),
                        str(row["replica"]), int(row["resolution_s"]), int(row["at_s"]), summary)


def to_stored(row: Mapping[str, Any]) -> StoredPoint | None:
    """A row as read back, its summary left compact; None (logged) for unreadable JSON."""
    try:
        data = json.loads(row["summary"])
    except ValueError as exc:
        log.warning("skipping a damaged history point of %s/%s: %s", row["model"], row["env"],
                    exc)
        return None
    return StoredPoint(str(row["model"]), str(row["env"]), int(row["version"]),
                       str(row["replica"]), int(row["resolution_s"]), int(row["at_s"]),
                       data if isinstance(data, dict) else {})


def checked_batch(points: Sequence[HistoryPoint]) -> list[dict[str, Any]]:
    """The rows of one write; InvalidInput past MAX_BATCH (writes stay small transactions)."""
    if len(points) > MAX_BATCH:
        raise InvalidInput(f"{len(points)} history points in one write",
                           fix=f"write at most {MAX_BATCH} points at a time")
    return [point_row(p) for p in points]


class TierStore(Protocol):
    """What the compaction needs of one adapter's table (each call in the open transaction)."""

    def newest(self, resolution_s: int) -> int | None:
        """The newest bucket of a tier (None: empty)."""
        ...

    def oldest_after(self, resolution_s: int, at_s: int) -> int | None:
        """The oldest bucket of a tier at or after `at_s` (None: none)."""
        ...

    def rows_between(self, resolution_s: int, start_s: int, end_s: int) -> list[Any]:
        """Every row of a tier with start_s <= at_s < end_s."""
        ...

    def put(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows."""
        ...

    def drop_before(self, resolution_s: int, cutoff_s: int, batch: int) -> int:
        """Delete at most `batch` rows of a tier older than the cutoff; how many."""
        ...


def compact(retention: Sequence[Tier], *, now_s: int, batch: int, store: TierStore) -> int:
    """One bounded pass: roll settled buckets of each tier up into the next (at most
    ROLLUP_BUCKETS coarse buckets a tier; a pass runs every minute), then drop what is past
    each tier's keep (at most `batch` rows a tier). Returns the rows it rolled up or dropped.

    Callers hold the compaction lease (`COMPACT_LEASE`): two passes at once would roll the same
    buckets up twice."""
    done = 0
    for finer, tier in itertools.pairwise(retention):
        newest = store.newest(tier.resolution_s)
        after = newest + tier.resolution_s if newest is not None else 0
        window = rollup_window(tier, first_pending_s=store.oldest_after(finer.resolution_s,
                                                                          after),
                               now_s=now_s, max_buckets=ROLLUP_BUCKETS)
        if window is None:
            continue
        points = [p for p in map(to_point, store.rows_between(finer.resolution_s, *window))
                  if p is not None]
        rolled = rollup(points, tier.resolution_s)
        for start in range(0, len(rolled), MAX_BATCH):
            store.put([point_row(p) for p in rolled[start:start + MAX_BATCH]])
        done += len(points)
    for tier in retention:
        done += store.drop_before(tier.resolution_s, now_s - tier.keep_s, batch)
    return done
