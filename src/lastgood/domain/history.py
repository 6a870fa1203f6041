"""Metric history: what each served version did, bucket by bucket, kept in the registry.

Each replica writes, with its heartbeat report, one `HistoryPoint` per version it served in the
last bucket: the change of its counters (requests, errors, the latency histogram, labelled
feedback, predictions, custom metrics) as a `Summary`, which merges exactly across replicas and
buckets. Older points are rolled up into coarser buckets (replicas merged) and finally dropped:

    10 s points for 1 hour  ->  1 min points for 1 day  ->  10 min points for 30 days

A bucket without a point is a gap (nothing was served, or no replica reported): it is drawn
as a gap, never as a zero or a straight line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.domain.baselines import summary_plus
from lastgood.domain.errors import InvalidInput
from lastgood.domain.measurements import LATENCY_BOUNDS, Histogram, Moments, RateCounts, Summary

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


def compaction_cutoffs(retention: Sequence[Tier], *, now_s: int) -> list[tuple[Tier, int, int]]:
    """(tier, cutoff, next resolution or 0 to drop): points of the tier older than the cutoff
    move on. The cutoff is aligned to the next tier's buckets, so a bucket is rolled up whole."""
    found = []
    for i, tier in enumerate(retention):
        after = retention[i + 1].resolution_s if i + 1 < len(retention) else 0
        cutoff = now_s - tier.keep_s
        found.append((tier, bucket_of(cutoff, after) if after else cutoff, after))
    return found


def resolution_for(span: timedelta, *, buckets: int = MAX_BUCKETS,
                   retention: Sequence[Tier] = DEFAULT_RETENTION) -> int:
    """The bucket size a reading of the last `span` is drawn at: the finest tier that still
    holds the span's start, grown (in whole multiples) so one series has at most `buckets`
    buckets (never more than MAX_BUCKETS)."""
    seconds = span.total_seconds()
    tier = next((t for t in retention if t.keep_s >= seconds), retention[-1])
    most = max(1, min(buckets, MAX_BUCKETS))
    return tier.resolution_s * max(1, math.ceil(seconds / tier.resolution_s / most))


_SPAN = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_span(text: str) -> timedelta:
    """`30m`, `1h`, `2d`, `1w` as a span between MIN_SPAN and MAX_SPAN; InvalidInput otherwise."""
    found = _SPAN.match(text)
    if found is None:
        raise InvalidInput(f"cannot read the span {text!r}",
                           fix="give a number and a unit: 30m, 1h, 1d or 1w")
    span = timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])
    if not MIN_SPAN <= span <= MAX_SPAN:
        raise InvalidInput(f"the span {text!r} is outside 1m..30d",
                           fix="history is kept for 30 days: ask for 1m to 30d")
    return span


# -- the stored form --------------------------------------------------------------------------
# Compact: latency as the non-empty buckets of LATENCY_BOUNDS, other histograms with their
# bounds, custom metrics as moments. About 100-300 bytes a point.

def _sparse(hist: Histogram) -> dict[str, Any]:
    counts = {str(i): c for i, c in enumerate(hist.counts) if c}
    if hist.bounds == LATENCY_BOUNDS:
        return {"c": counts}
    return {"b": list(hist.bounds), "c": counts}


def _dense(data: Mapping[str, Any]) -> Histogram:
    bounds = tuple(float(b) for b in data.get("b", LATENCY_BOUNDS))
    counts = [0] * (len(bounds) + 1)
    for index, count in dict(data["c"]).items():
        counts[int(index)] = int(count)
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
            latency=_dense(data["l"]) if "l" in data else None,
            predictions=_dense(data["p"]) if "p" in data else None,
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
