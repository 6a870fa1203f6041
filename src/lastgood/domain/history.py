"""Metric history: what each served version did, bucket by bucket, kept in the registry.

Each replica writes, with its heartbeat report, one `HistoryPoint` per version it served in the
last bucket: the change of its counters (requests, errors, the latency histogram, labelled
feedback, predictions, custom metrics) as a `Summary`, which merges exactly across replicas and
buckets. Every tier is kept for its own time; a minute after a coarser bucket ends, the finer
points in it are rolled up into it (replicas merged), so a reading of a day or a week reads its
own tier and only the last few minutes from the finer ones:

    10 s points for 1 hour,  1 min points for 1 day,  10 min points for 30 days

A bucket without a point is a gap (nothing was served, or no replica reported): it is drawn
as a gap, never as a zero or a straight line.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.domain.baselines import summary_plus
from lastgood.domain.errors import InvalidInput
from lastgood.domain.measurements import (
    CATEGORY_BOUNDS,
    LATENCY_BOUNDS,
    Histogram,
    Moments,
    RateCounts,
    Summary,
)

ROLLED_UP = "*"
"""The replica of a rolled-up point: the replicas' points merged."""

MAX_BATCH = 1000
"""Points one write may carry: a replica's report stays a small transaction."""

MAX_SPAN = timedelta(days=30)
MIN_SPAN = timedelta(minutes=1)
MAX_BUCKETS = 1500
"""Buckets one series may have in a reading: the resolution grows with the span to fit."""
MAX_ROWS = 50_000
"""Rows one reading may scan; past that the reading says it was cut short."""


@dataclass(frozen=True, slots=True)
class Tier:
    """Points of `resolution_s` seconds, kept for `keep_s` seconds before the next tier takes
    them (the last tier drops them)."""

    resolution_s: int
    keep_s: int


DEFAULT_RETENTION: tuple[Tier, ...] = (Tier(10, 3600), Tier(60, 86_400), Tier(600, 30 * 86_400))
"""10 s for 1 hour, 1 min for 1 day, 10 min for 30 days."""


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """What one version did in one bucket on one replica (or, rolled up, on all of them)."""

    model: str
    env: str
    version: int
    replica: str
    resolution_s: int
    at_s: int  # the bucket's start, seconds since the epoch (UTC), a multiple of resolution_s
    summary: Summary

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_s, UTC)


def epoch_s(at: datetime) -> int:
    """Whole seconds since the epoch (UTC) of an aware time."""
    return int(at.timestamp())


def bucket_of(at_s: float, resolution_s: int) -> int:
    """The start of the bucket of `resolution_s` seconds that holds `at_s`."""
    return int(at_s // resolution_s) * resolution_s


def rollup(points: Iterable[HistoryPoint], resolution_s: int) -> list[HistoryPoint]:
    """Points merged into buckets of `resolution_s` per (model, env, version), replicas merged;
    ordered by time, then version."""
    merged: dict[tuple[str, str, int, int], Summary] = {}
    for p in points:
        key = (p.model, p.env, p.version, bucket_of(p.at_s, resolution_s))
        found = merged.get(key)
        merged[key] = p.summary if found is None else summary_plus(found, p.summary)
    return [HistoryPoint(m, e, v, ROLLED_UP, resolution_s, at, s)
            for (m, e, v, at), s in sorted(merged.items(), key=lambda kv: (kv[0][3], kv[0][2]))]


COMPACT_LEASE = "metric-history.compact"
"""The lease a compaction pass holds (LeaseRepository): one pass at a time over the registry."""

SETTLE_S = 60
"""A bucket is rolled up into the next tier this long after it ended, so a replica's report that
is a heartbeat late still counts there (a point later than that reaches only its own tier)."""


def rollup_window(tier: Tier, *, first_pending_s: int | None, now_s: int,
                  max_buckets: int) -> tuple[int, int] | None:
    """[start, end) of the `tier` buckets to roll up now from the finer tier, or None.

    `first_pending_s` is the oldest finer point after the tier's newest bucket (None: none).
    Only buckets that ended SETTLE_S ago are rolled up, at most `max_buckets` of them."""
    if first_pending_s is None:
        return None
    start = bucket_of(first_pending_s, tier.resolution_s)
    end = min(start + max_buckets * tier.resolution_s,
              bucket_of(now_s - SETTLE_S, tier.resolution_s))
    return (start, end) if start < end else None


def tier_for(span: timedelta, retention: Sequence[Tier] = DEFAULT_RETENTION) -> int:
    """The index of the finest tier that still holds the start of the last `span`."""
    seconds = span.total_seconds()
    return next((i for i, t in enumerate(retention) if t.keep_s >= seconds), len(retention) - 1)


def resolution_for(span: timedelta, *, buckets: int = MAX_BUCKETS,
                   retention: Sequence[Tier] = DEFAULT_RETENTION) -> int:
    """The bucket size a reading of the last `span` is drawn at: the finest tier that still
    holds the span's start, grown (in whole multiples) so one series has at most `buckets`
    buckets (never more than MAX_BUCKETS)."""
    seconds = span.total_seconds()
    tier = retention[tier_for(span, retention)]
    most = max(1, min(buckets, MAX_BUCKETS))
    return tier.resolution_s * max(1, math.ceil(seconds / tier.resolution_s / most))


_SPAN = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}


SPAN_PATTERN = r"^[0-9]{1,9}(s|m|min|h|d|w)$"
"""A span as the HTTP API takes it (its OpenAPI pattern)."""


def parse_span(text: str, *, clamp: bool = False) -> timedelta:
    """`30m`, `1h`, `2d`, `1w` as a span between MIN_SPAN and MAX_SPAN; InvalidInput otherwise,
    or with `clamp` the nearest span in that range (the HTTP API: a URL is bounded, not refused)."""
    found = _SPAN.match(text)
    if found is None:
        raise InvalidInput(f"cannot read the span {text!r}",
                           fix="give a number and a unit: 30m, 1h, 1d or 1w")
    span = timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])
    if clamp:
        return min(max(span, MIN_SPAN), MAX_SPAN)
    if not MIN_SPAN <= span <= MAX_SPAN:
        raise InvalidInput(f"the span {text!r} is outside 1m..30d",
                           fix="history is kept for 30 days: ask for 1m to 30d")
    return span


# -- the stored form --------------------------------------------------------------------------
# Compact: histograms as their non-empty buckets, the latency and class bounds by name (others
# with their bounds), custom metrics as moments. About 100-200 bytes a point.

_KNOWN_BOUNDS: Mapping[str, tuple[float, ...]] = {"l": LATENCY_BOUNDS, "k": CATEGORY_BOUNDS}
"""Bounds every replica uses, stored by name instead of by value."""


def _sparse(hist: Histogram) -> dict[str, Any]:
    # [index, count, index, count, ...] of the non-empty buckets, by index: read without sorting
    counts = [x for i, c in enumerate(hist.counts) if c for x in (i, c)]
    name = next((k for k, bounds in _KNOWN_BOUNDS.items() if hist.bounds == bounds), None)
    return {"n": name, "c": counts} if name else {"b": list(hist.bounds), "c": counts}


def dense_histogram(data: Mapping[str, Any]) -> Histogram:
    """A histogram in the compact stored form as a Histogram."""
    bounds = _KNOWN_BOUNDS[data["n"]] if "n" in data else tuple(float(b) for b in data["b"])
    counts = [0] * (len(bounds) + 1)
    pairs = data["c"]
    for k in range(0, len(pairs), 2):
        counts[int(pairs[k])] = int(pairs[k + 1])
    return Histogram(bounds, tuple(counts))


def summary_to_row(summary: Summary) -> dict[str, Any]:
    """A bucket's summary as compact JSON types; families without data are left out."""
    out: dict[str, Any] = {}
    if summary.errors is not None:
        out["e"] = [summary.errors.events, summary.errors.trials]
    if summary.accuracy is not None and summary.accuracy.trials:
        out["a"] = [summary.accuracy.events, summary.accuracy.trials]
    if summary.latency is not None and summary.latency.total:
        out["l"] = _sparse(summary.latency)
    if summary.predictions is not None and summary.predictions.total:
        out["p"] = _sparse(summary.predictions)
    if summary.custom:
        out["x"] = {k: [m.count, m.mean, m.m2] for k, m in sorted(summary.custom.items())
                    if m.count}
    return out


def summary_from_row(data: Mapping[str, Any]) -> Summary:
    """The summary `summary_to_row` wrote; InvalidInput when the row is damaged."""
    try:
        return Summary(
            errors=RateCounts(*map(int, data["e"])) if "e" in data else None,
            accuracy=RateCounts(*map(int, data["a"])) if "a" in data else None,
            latency=dense_histogram(data["l"]) if "l" in data else None,
            predictions=dense_histogram(data["p"]) if "p" in data else None,
            custom={str(k): Moments(int(v[0]), float(v[1]), float(v[2]))
                    for k, v in dict(data.get("x") or {}).items()})
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidInput(f"a stored history point is damaged ({type(exc).__name__}: {exc})",
                           fix="the point is skipped; nothing to do") from exc


def has_data(summary: Summary) -> bool:
    """Whether a bucket's summary holds anything worth a point."""
    return bool((summary.errors is not None and summary.errors.trials)
                or (summary.accuracy is not None and summary.accuracy.trials)
                or any(m.count for m in summary.custom.values()))


# -- reading: merged in the stored form -------------------------------------------------------
# A reading merges thousands of points; dense histograms (136 latency buckets) would cost more
# than the database. Points read back keep the compact form and merge bucket by bucket.

@dataclass(frozen=True, slots=True)
class StoredPoint:
    """A point as read back: its summary still in the compact stored form (`row`)."""

    model: str
    env: str
    version: int
    replica: str
    resolution_s: int
    at_s: int
    row: Mapping[str, Any]

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_s, UTC)

    def point(self) -> HistoryPoint:
        """The point with its summary (InvalidInput when the row is damaged)."""
        return HistoryPoint(self.model, self.env, self.version, self.replica, self.resolution_s,
                            self.at_s, summary_from_row(self.row))


def stored(point: HistoryPoint) -> StoredPoint:
    return StoredPoint(point.model, point.env, point.version, point.replica,
                       point.resolution_s, point.at_s, summary_to_row(point.summary))


def _add_pair(a: Any, b: Any) -> list[int]:
    return [int(a[0]) + int(b[0]), int(a[1]) + int(b[1])]


def _add_sparse(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    if a.get("n") != b.get("n") or a.get("b") != b.get("b"):
        raise ValueError("histograms with different bounds")
    counts: dict[int, int] = {}
    for pairs in (a["c"], b["c"]):
        for k in range(0, len(pairs), 2):
            counts[pairs[k]] = counts.get(pairs[k], 0) + pairs[k + 1]
    return {**a, "c": [x for i in sorted(counts) for x in (i, counts[i])]}


def _add_moments(a: Any, b: Any) -> list[float]:
    merged = Moments(int(a[0]), float(a[1]), float(a[2])).plus(
        Moments(int(b[0]), float(b[1]), float(b[2])))
    return [merged.count, merged.mean, merged.m2]


_MERGE = {"e": _add_pair, "a": _add_pair, "l": _add_sparse, "p": _add_sparse}


def merge_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two compact summaries merged (ValueError/KeyError/TypeError for a damaged one)."""
    out = dict(a)
    for key, add in _MERGE.items():
        if key in b:
            out[key] = add(a[key], b[key]) if key in a else b[key]
    if "x" in b:
        custom = dict(a.get("x") or {})
        for name, moments in b["x"].items():
            custom[name] = _add_moments(custom[name], moments) if name in custom else moments
        out["x"] = custom
    return out


def _check_row(row: Mapping[str, Any]) -> None:
    """Raise (ValueError, KeyError, TypeError) when a compact summary is damaged."""
    for key in ("e", "a"):
        if key in row:
            events, trials = (int(x) for x in row[key])
            if not 0 <= events <= trials:
                raise ValueError(f"{events} of {trials}")
    for key in ("l", "p"):
        if key in row:
            bounds = _KNOWN_BOUNDS[row[key]["n"]] if "n" in row[key] else row[key]["b"]
            pairs = row[key]["c"]
            # set(map(type, ...)) and min() run in C: a week's reading checks ~50,000 numbers
            if len(pairs) % 2 or not set(map(type, pairs)) <= {int} \
                    or (pairs and min(pairs) < 0) \
                    or (pairs and pairs[-2] > len(bounds)) or pairs[::2] != sorted(pairs[::2]):
                raise ValueError("bucket indexes or counts out of range")
    for moments in (row.get("x") or {}).values():
        int(moments[0]), float(moments[1]), float(moments[2])


def rollup_stored(points: Iterable[StoredPoint], resolution_s: int) -> tuple[
        list[StoredPoint], int]:
    """Stored points merged into buckets of `resolution_s` per version (replicas merged), in
    time order, and how many damaged points were left out."""
    merged: dict[tuple[int, int], dict[str, Any]] = {}
    first: dict[tuple[int, int], StoredPoint] = {}
    damaged = 0
    for p in points:
        key = (bucket_of(p.at_s, resolution_s), p.version)
        try:
            _check_row(p.row)
            merged[key] = merge_rows(merged[key], p.row) if key in merged else dict(p.row)
        except (KeyError, TypeError, ValueError, IndexError):
            damaged += 1
            continue
        first.setdefault(key, p)
    out = [StoredPoint(first[k].model, first[k].env, k[1], ROLLED_UP, resolution_s, k[0], row)
           for k, row in sorted(merged.items())]
    return out, damaged


def sparse_quantiles(data: Mapping[str, Any], qs: Sequence[float]) -> list[float]:
    """The q-quantiles of a compact histogram, as `Histogram.quantile` interpolates them."""
    bounds = _KNOWN_BOUNDS[data["n"]] if "n" in data else tuple(float(b) for b in data["b"])
    pairs = data["c"]
    indexes = [pairs[k] for k in range(0, len(pairs), 2) if pairs[k + 1] > 0]
    counts = [pairs[k + 1] for k in range(0, len(pairs), 2) if pairs[k + 1] > 0]
    # one running total for every q: the bucket a rank falls in is found by bisection
    running = list(itertools.accumulate(counts))
    return [_quantile(bounds, indexes, counts, running, q) for q in qs]


def _quantile(bounds: Sequence[float], indexes: Sequence[int], counts: Sequence[int],
              running: Sequence[int], q: float) -> float:
    if not running or running[-1] == 0:
        return math.nan
    rank = q * running[-1]
    k = bisect.bisect_left(running, rank)  # the first bucket whose running total reaches it
    if k == len(running) or indexes[k] >= len(bounds):
        return bounds[-1]
    i, count = indexes[k], counts[k]
    low = bounds[i - 1] if i else min(0.0, bounds[0])
    return low + (bounds[i] - low) * max(rank - (running[k] - count), 0.0) / count
