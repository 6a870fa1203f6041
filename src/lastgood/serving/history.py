"""A replica's share of the metric history: every bucket, the change of its counters per version.

The replica writes its history itself, with its heartbeat report, rather than the watch: the
counters are here, the replica already writes to the registry every few seconds, and the
history then exists whether or not a watch or a browser runs. Several replicas write their own
points; a reading merges them (`lastgood.domain.history`).

Counts are taken only once they are committed: a write that fails is retried with the next one,
covering the longer interval (its point lands in the bucket of the interval's middle).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from lastgood.domain.baselines import regressed, summary_minus
from lastgood.domain.history import (
    DEFAULT_RETENTION,
    MAX_BATCH,
    HistoryPoint,
    Tier,
    bucket_of,
    has_data,
)
from lastgood.domain.measurements import (
    CATEGORIES,
    CATEGORY_BOUNDS,
    LATENCY_BOUNDS,
    Histogram,
    RateCounts,
    Summary,
    category_bin,
)
from lastgood.serving.evidence import VALUE_BUCKETS, VersionStats


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """How often a replica writes its history and compacts the registry's."""

    resolution_s: int = 10  # one point per version per this many seconds (the finest tier)
    retention: tuple[Tier, ...] = DEFAULT_RETENTION
    compact_every_s: float = 60.0  # one bounded compaction pass at most this often
    compact_batch: int = 2000  # points per tier per pass


def cumulative(stats: VersionStats) -> Summary:
    """A version's counters since the replica started serving it, as a Summary."""
    values = Histogram(VALUE_BUCKETS, tuple(stats.value_counts))
    if values.total == 0 and stats.classes:
        bins = [0] * (CATEGORIES + 1)
        for label, count in stats.classes.items():
            bins[category_bin(label)] += count
        values = Histogram(CATEGORY_BOUNDS, tuple(bins))
    return Summary(errors=RateCounts(stats.errors, stats.requests),
                   latency=Histogram(LATENCY_BOUNDS, tuple(stats.latency_counts)),
                   accuracy=RateCounts(stats.feedback_correct, stats.feedback_total),
                   predictions=values if values.total else None,
                   custom=dict(stats.custom))


@dataclass(frozen=True, slots=True)
class Mark:
    """Where the last committed point of one version left off."""

    summary: Summary
    at_s: float


@dataclass(frozen=True, slots=True)
class Pending:
    """Points to write, and the marks to keep once they are committed."""

    points: tuple[HistoryPoint, ...]
    marks: dict[tuple[str, int], Mark] = field(default_factory=dict)


class HistoryRecorder:
    """Turns a replica's cumulative counters into history points, one bucket at a time."""

    def __init__(self, *, env: str, replica_id: str,
                 options: HistoryOptions = HistoryOptions()) -> None:
        self.env, self.replica_id, self.options = env, replica_id, options
        self._marks: dict[tuple[str, int], Mark] = {}
        self._last_write_s: float | None = None
        self._last_compact = float("-inf")

    def due(self, now: datetime) -> bool:
        """Whether a bucket has passed since the last committed write."""
        last = self._last_write_s
        return last is None or now.timestamp() - last >= self.options.resolution_s

    def collect(self, served: Iterable[tuple[str, VersionStats]], *, now: datetime) -> Pending:
        """The points of every (model, version) with something new since its mark."""
        now_s = now.timestamp()
        points: list[HistoryPoint] = []
        marks: dict[tuple[str, int], Mark] = {}
        for model, stats in served:
            key = (model, stats.version)
            current = cumulative(stats)
            mark = self._marks.get(key)
            start_s = self._start(stats, mark, now_s)
            change = current if mark is None or regressed(current, mark.summary) \
                else summary_minus(current, mark.summary)
            marks[key] = Mark(current, now_s)
            if has_data(change) and len(points) < MAX_BATCH:
                middle = (start_s + now_s) / 2
                points.append(HistoryPoint(model, self.env, stats.version, self.replica_id,
                                           self.options.resolution_s,
                                           bucket_of(middle, self.options.resolution_s),
                                           change))
        return Pending(tuple(points), marks)

    def _start(self, stats: VersionStats, mark: Mark | None, now_s: float) -> float:
        if mark is not None:
            return mark.at_s
        if stats.counting_since is not None:
            return max(stats.counting_since.timestamp(), now_s - self.options.resolution_s)
        return now_s

    def committed(self, pending: Pending, *, now: datetime) -> None:
        """The pending points are stored: the next ones start where these end."""
        self._marks.update(pending.marks)
        self._last_write_s = now.timestamp()

    def compaction_due(self, tick: float) -> bool:
        """Whether this replica should run a compaction pass at `tick` (the Clock's monotonic
        seconds), and note that it did."""
        if tick - self._last_compact < self.options.compact_every_s:
            return False
        self._last_compact = tick
        return True
