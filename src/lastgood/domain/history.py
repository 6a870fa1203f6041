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
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

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
# One row a point: the counts and the latency quantiles as plain numbers (what a reading of one
# point per bucket draws without decoding anything), the histograms as their non-empty buckets
# and the custom metrics as moments, each as compact JSON text, decoded only when a reading
# merges points or compares predictions. About 150-250 bytes a point.

QUANTILES = (0.5, 0.95, 0.99)
"""The latency quantiles a point stores and a chart draws."""

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


def _text(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


class StoredPoint(NamedTuple):
    """A point as stored: counts and latency quantiles as numbers, the rest as compact JSON text
    (`latency` and `predictions` histograms, `custom` moments by name), decoded when needed.

    Immutable like the domain's dataclasses; a tuple because a reading builds thousands of
    them and a frozen dataclass costs several times more to build."""

    model: str
    env: str
    version: int
    replica: str
    resolution_s: int
    at_s: int
    errors: tuple[int, int] | None = None  # (errors, requests)
    accuracy: tuple[int, int] | None = None  # (correct, labelled)
    quantiles: tuple[float, float, float] | None = None  # latency p50, p95, p99 in seconds
    latency: str | None = None
    predictions: str | None = None
    custom: str | None = None

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_s, UTC)

    def point(self) -> HistoryPoint:
        """The point with its summary (InvalidInput when the row is damaged)."""
        try:
            summary = Summary(
                errors=_counts(self.errors), accuracy=_counts(self.accuracy),
                latency=dense_histogram(_checked_sparse(self.latency)) if self.latency else None,
                predictions=(dense_histogram(_checked_sparse(self.predictions))
                             if self.predictions else None),
                custom=_moments(self.custom))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidInput(f"a stored history point is damaged ({type(exc).__name__}: "
                               f"{exc})", fix="the point is skipped; nothing to do") from exc
        return HistoryPoint(self.model, self.env, self.version, self.replica, self.resolution_s,
                            self.at_s, summary)


def _counts(pair: tuple[int, int] | None) -> RateCounts | None:
    if pair is None:
        return None
    events, trials = int(pair[0]), int(pair[1])
    if not 0 <= events <= trials:
        raise ValueError(f"{events} of {trials}")
    return RateCounts(events, trials)


def _moments(text: str | None) -> dict[str, Moments]:
    data = json.loads(text) if text else {}
    return {str(k): Moments(int(v[0]), float(v[1]), float(v[2])) for k, v in dict(data).items()}


def stored(point: HistoryPoint) -> StoredPoint:
    """A point in the stored form; families without data are left out."""
    s = point.summary
    errors = (s.errors.events, s.errors.trials) if s.errors is not None else None
    accuracy = ((s.accuracy.events, s.accuracy.trials)
                if s.accuracy is not None and s.accuracy.trials else None)
    latency = quantiles = None
    if s.latency is not None and s.latency.total:
        latency = _text(_sparse(s.latency))
        p50, p95, p99 = (s.latency.quantile(q) for q in QUANTILES)
        quantiles = (p50, p95, p99)
    predictions = (_text(_sparse(s.predictions))
                   if s.predictions is not None and s.predictions.total else None)
    custom = {k: [m.count, m.mean, m.m2] for k, m in sorted(s.custom.items()) if m.count}
    return StoredPoint(point.model, point.env, point.version, point.replica, point.resolution_s,
                       point.at_s, errors, accuracy, quantiles, latency, predictions,
                       _text(custom) if custom else None)


def has_data(summary: Summary) -> bool:
    """Whether a bucket's summary holds anything worth a point."""
    return bool((summary.errors is not None and summary.errors.trials)
                or (summary.accuracy is not None and summary.accuracy.trials)
                or any(m.count for m in summary.custom.values()))


# -- reading: merged in the stored form -------------------------------------------------------
# A reading draws up to 1500 buckets from thousands of points; decoding every histogram would
# cost more than the database. A bucket of one point is drawn from its numbers; only a bucket of
# several points (replicas, finer buckets) decodes and merges their latency histograms.

def _checked_sparse(text: str) -> dict[str, Any]:
    """A compact histogram from its text; ValueError/KeyError/TypeError when damaged."""
    data = json.loads(text)
    bounds = _KNOWN_BOUNDS[data["n"]] if "n" in data else data["b"]
    pairs = data["c"]
    # set(map(type, ...)) and min() run in C: a reading may check ~50,000 numbers
    if len(pairs) % 2 or not set(map(type, pairs)) <= {int} or (pairs and min(pairs) < 0) \
            or (pairs and pairs[-2] > len(bounds)) or pairs[::2] != sorted(pairs[::2]):
        raise ValueError("bucket indexes or counts out of range")
    return dict(data)


def _dense(texts: Iterable[str]) -> tuple[tuple[float, ...], list[int]] | None:
    """Compact histograms (same bounds) added into one dense count list: (bounds, counts);
    None for none; ValueError/KeyError/TypeError/IndexError when one is damaged."""
    first: dict[str, Any] | None = None
    bounds: tuple[float, ...] = ()
    counts: list[int] = []
    for text in texts:
        data = _checked_sparse(text)
        if first is None:
            first = data
            bounds = (_KNOWN_BOUNDS[data["n"]] if "n" in data
                      else tuple(float(b) for b in data["b"]))
            counts = [0] * (len(bounds) + 1)
        elif data.get("n") != first.get("n") or data.get("b") != first.get("b"):
            raise ValueError("histograms with different bounds")
        pairs = data["c"]
        for i, c in zip(pairs[::2], pairs[1::2], strict=True):
            counts[i] += c
    return None if first is None else (bounds, counts)


def _add_pair(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a if b is None else b
    return (a[0] + b[0], a[1] + b[1])


class Bucket(NamedTuple):
    """One version's bucket of a reading: its sound points (replicas, finer buckets) merged
    (a tuple, as StoredPoint)."""

    version: int
    at_s: int
    points: tuple[StoredPoint, ...]
    errors: tuple[int, int] | None
    accuracy: tuple[int, int] | None
    quantiles: tuple[float, float, float] | None  # latency p50, p95, p99 in seconds
    custom: Mapping[str, Moments]

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_s, UTC)

    def predictions(self) -> Histogram | None:
        """The merged predictions histogram (None without one; ValueError when damaged)."""
        found = _dense(p.predictions for p in self.points if p.predictions)
        return None if found is None else Histogram(found[0], tuple(found[1]))

    def prediction_bins(self) -> tuple[tuple[float, ...], list[int]] | None:
        """The merged predictions as (bounds, [bin, count, ...] of the non-empty bins), without
        building a dense histogram for a single point (ValueError etc. when damaged)."""
        texts = [p.predictions for p in self.points if p.predictions]
        if len(texts) == 1:
            data = _checked_sparse(texts[0])
            bounds = (_KNOWN_BOUNDS[data["n"]] if "n" in data
                      else tuple(float(b) for b in data["b"]))
            return bounds, list(data["c"])
        found = _dense(texts)
        if found is None:
            return None
        return found[0], [x for i, c in enumerate(found[1]) if c for x in (i, c)]


def _plain(p: StoredPoint) -> bool:
    """A point drawn from its numbers alone: sound counts, quantiles stored, no custom."""
    e, a = p.errors, p.accuracy
    return ((e is None or 0 <= e[0] <= e[1]) and (a is None or 0 <= a[0] <= a[1])
            and (p.quantiles is not None or not p.latency) and not p.custom)


def _sound_pair(pair: tuple[int, int] | None) -> tuple[int, int] | None:
    if pair is not None and not 0 <= pair[0] <= pair[1]:
        raise ValueError(f"{pair[0]} of {pair[1]}")
    return pair


def _one(p: StoredPoint, at_s: int) -> Bucket:
    """A bucket of a single point: drawn from its stored numbers."""
    quantiles = p.quantiles
    if quantiles is None and p.latency:
        quantiles = _latency_quantiles([p.latency])
    return Bucket(p.version, at_s, (p,), _sound_pair(p.errors), _sound_pair(p.accuracy),
                  quantiles, _moments(p.custom))


def _tuple3(values: Sequence[float]) -> tuple[float, float, float]:
    return (values[0], values[1], values[2])


def _latency_quantiles(texts: Sequence[str]) -> tuple[float, float, float] | None:
    found = _dense(texts)
    if found is None:
        return None
    p50, p95, p99 = dense_quantiles(*found, QUANTILES)
    return (p50, p95, p99)


def _many(points: Sequence[StoredPoint], at_s: int) -> Bucket:
    """A bucket of several points: counts added, latency histograms merged, then read."""
    errors = accuracy = None
    custom: dict[str, Moments] = {}
    for p in points:
        errors = _add_pair(errors, _sound_pair(p.errors))
        accuracy = _add_pair(accuracy, _sound_pair(p.accuracy))
        for name, moments in _moments(p.custom).items():
            custom[name] = custom[name].plus(moments) if name in custom else moments
    quantiles = _latency_quantiles([p.latency for p in points if p.latency])
    return Bucket(points[0].version, at_s, tuple(points), errors, accuracy, quantiles, custom)


def merge_bucket(points: Sequence[StoredPoint], at_s: int) -> tuple[Bucket | None, int]:
    """The points of one version's bucket merged, and how many damaged ones were left out."""
    try:
        return (_one(points[0], at_s) if len(points) == 1 else _many(points, at_s)), 0
    except (KeyError, TypeError, ValueError, IndexError):
        if len(points) == 1:
            return None, 1
    sound = [p for p in points if _sound(p)]
    try:
        return (_many(sound, at_s) if sound else None), len(points) - len(sound)
    except (KeyError, TypeError, ValueError, IndexError):  # sound alone, not together
        return None, len(points)


def _sound(p: StoredPoint) -> bool:
    try:
        _many([p], p.at_s)
    except (KeyError, TypeError, ValueError, IndexError):
        return False
    return True


def rollup_stored(points: Iterable[StoredPoint], resolution_s: int) -> tuple[list[Bucket], int]:
    """Stored points merged into buckets of `resolution_s` per version (replicas merged), in
    time order, and how many damaged points were left out."""
    groups: dict[tuple[int, int], list[StoredPoint]] = {}
    for p in points:
        key = (p.at_s - p.at_s % resolution_s, p.version)
        found = groups.get(key)
        if found is None:
            groups[key] = [p]
        else:
            found.append(p)
    out: list[Bucket] = []
    damaged = 0
    for (at_s, _), group in sorted(groups.items()):
        p = group[0]
        if len(group) == 1 and _plain(p):  # the common case of a rolled-up tier, inline
            out.append(Bucket(p.version, at_s, (p,), p.errors, p.accuracy, p.quantiles, {}))
            continue
        bucket, bad = merge_bucket(group, at_s)
        damaged += bad
        if bucket is not None:
            out.append(bucket)
    return out, damaged


def sparse_quantiles(data: Mapping[str, Any], qs: Sequence[float]) -> list[float]:
    """The q-quantiles of a compact histogram, as `Histogram.quantile` interpolates them."""
    hist = dense_histogram(data)
    return dense_quantiles(hist.bounds, hist.counts, qs)


def dense_quantiles(bounds: Sequence[float], counts: Sequence[int],
                    qs: Sequence[float]) -> list[float]:
    """The q-quantiles of histogram counts, as `Histogram.quantile` interpolates them: one
    running total for every q, the bucket a rank falls in found by bisection."""
    running = list(itertools.accumulate(counts))
    return [_quantile(bounds, counts, running, q) for q in qs]


def _quantile(bounds: Sequence[float], counts: Sequence[int], running: Sequence[int],
              q: float) -> float:
    if not running or running[-1] <= 0 or not bounds:
        return math.nan
    rank = q * running[-1]
    # the first bucket whose running total reaches the rank (a non-empty one, for q > 0)
    i = bisect.bisect_left(running, rank)
    if i >= len(bounds):
        return bounds[-1]
    count = counts[i]
    low = bounds[i - 1] if i else min(0.0, bounds[0])
    return low + (bounds[i] - low) * max(rank - (running[i] - count), 0.0) / count
