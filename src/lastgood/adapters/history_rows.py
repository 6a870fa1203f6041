"""Metric history rows for every registry adapter: a point <-> its columns, and the compaction
both SQL adapters run (take a bounded batch of old points by deleting them, put them back rolled
up), so the three implementations cannot drift apart."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.domain.history import (
    MAX_BATCH,
    HistoryPoint,
    Tier,
    compaction_cutoffs,
    rollup,
    summary_from_row,
    summary_to_row,
)

log = logging.getLogger("lastgood.history")

COLUMNS = ("model", "env", "version", "replica", "resolution_s", "at_s", "summary")


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


def checked_batch(points: Sequence[HistoryPoint]) -> list[dict[str, Any]]:
    """The rows of one write; InvalidInput past MAX_BATCH (writes stay small transactions)."""
    if len(points) > MAX_BATCH:
        raise InvalidInput(f"{len(points)} history points in one write",
                           fix=f"write at most {MAX_BATCH} points at a time")
    return [point_row(p) for p in points]


Take = Callable[[int, int, int], list[Mapping[str, Any]]]
"""(resolution_s, cutoff_s, batch) -> the rows it deleted (and so now owns)."""
Put = Callable[[list[dict[str, Any]]], None]


def compact(retention: Sequence[Tier], *, now_s: int, batch: int, take: Take,
            put: Put) -> int:
    """One bounded compaction pass over every tier; how many points it took in."""
    taken = 0
    for tier, cutoff, next_resolution in compaction_cutoffs(retention, now_s=now_s):
        rows = take(tier.resolution_s, cutoff, batch)
        taken += len(rows)
        if next_resolution and rows:
            points = [p for p in map(to_point, rows) if p is not None]
            rolled = rollup(points, next_resolution)
            for start in range(0, len(rolled), MAX_BATCH):
                put([point_row(p) for p in rolled[start:start + MAX_BATCH]])
    return taken
