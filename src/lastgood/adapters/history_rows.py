"""Metric history rows for every registry adapter: a point <-> its columns, and the compaction
every adapter runs over its table (`TierStore`), so the implementations cannot drift apart."""

from __future__ import annotations

import itertools
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
    stored,
)

log = logging.getLogger("lastgood.history")

COLUMNS = ("model", "env", "version", "replica", "resolution_s", "at_s", "requests", "errors",
           "labelled", "correct", "p50_s", "p95_s", "p99_s", "latency", "predictions", "custom")
ROLLUP_BUCKETS = 10
"""Coarse buckets one pass rolls up per tier: a pass stays small after a long pause too."""


def stored_row(p: StoredPoint) -> dict[str, Any]:
    """The columns of a point in the stored form."""
    errors, requests = p.errors if p.errors is not None else (None, None)
    correct, labelled = p.accuracy if p.accuracy is not None else (None, None)
    p50, p95, p99 = p.quantiles if p.quantiles is not None else (None, None, None)
    return {"model": p.model, "env": p.env, "version": p.version, "replica": p.replica,
            "resolution_s": p.resolution_s, "at_s": p.at_s, "requests": requests,
            "errors": errors, "labelled": labelled, "correct": correct, "p50_s": p50,
            "p95_s": p95, "p99_s": p99, "latency": p.latency, "predictions": p.predictions,
            "custom": p.custom}


def point_row(point: HistoryPoint) -> dict[str, Any]:
    """The columns of a point."""
    return stored_row(stored(point))


def row_stored(row: Mapping[str, Any]) -> StoredPoint:
    """The stored form of a row of COLUMNS."""
    requests, labelled, p50 = row["requests"], row["labelled"], row["p50_s"]
    return StoredPoint(
        str(row["model"]), str(row["env"]), int(row["version"]), str(row["replica"]),
        int(row["resolution_s"]), int(row["at_s"]),
        (int(row["errors"]), int(requests)) if requests is not None else None,
        (int(row["correct"]), int(labelled)) if labelled is not None else None,
        (float(p50), float(row["p95_s"]), float(row["p99_s"])) if p50 is not None else None,
        row["latency"], row["predictions"], row["custom"])


def to_point(row: Mapping[str, Any]) -> HistoryPoint | None:
    """The point of a row; None (logged) for a damaged one, which the compaction skips."""
    try:
        return row_stored(row).point()
    except (InvalidInput, ValueError, TypeError) as exc:
        log.warning("skipping a damaged history point of %s/%s: %s", row["model"], row["env"],
                    exc)
        return None


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
