"""What a metric source measures, in shapes that merge in O(1): counts, histograms, moments.

A baseline and a live window have the same shape (`Summary`); a `LiveWindow` adds when it was
read and what the source reported instead of data. Constructors accept anything, so garbage from
a source can be represented; `defect()` says what is wrong and the assessment turns that into
INCONCLUSIVE instead of a crash.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lastgood.domain.errors import InvalidInput


def quantile_ms(latencies_s: Iterable[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of latencies in seconds, in ms to the microsecond; None
    without samples. The one formula of the replica's evidence and the dashboard's charts."""
    ordered = sorted(latencies_s)  # a copy: a replica's loop may append while it is read
    if not ordered:
        return None
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000, 3)


def geometric_bounds(low: float, high: float, *, per_doubling: int = 8) -> tuple[float, ...]:
    """Bucket upper bounds from `low` to at least `high`, `per_doubling` buckets per doubling."""
    if not 0 < low < high or per_doubling < 1:
        raise InvalidInput(f"bad bucket range {low}..{high}",
                           fix="use 0 < low < high and per_doubling >= 1")
    steps = math.ceil(math.log2(high / low) * per_doubling)
    return tuple(low * 2 ** (i / per_doubling) for i in range(steps + 1))


LATENCY_BOUNDS = geometric_bounds(0.001, 120.0)
"""Default latency buckets in seconds: 1 ms to 2 min, 9 % apart."""

CATEGORIES = 64
CATEGORY_BOUNDS = tuple(i + 0.5 for i in range(CATEGORIES))
"""Predicted classes as bins: label k in 0..63 -> bin k; other labels -> crc32 % 64; the
overflow bin holds "<other>" (classes past the gateway's limit)."""


def category_bin(label: str) -> int:
    """The bin of a predicted class label (see CATEGORY_BOUNDS)."""
    if label == "<other>":
        return CATEGORIES
    if label.isdigit() and int(label) < CATEGORIES:
        return int(label)
    return zlib.crc32(label.encode()) % CATEGORIES


@dataclass(frozen=True, slots=True)
class RateCounts:
    """Events among trials: errors among requests, or correct answers among labelled ones."""

    events: int
    trials: int

    @property
    def samples(self) -> int:
        return self.trials

    def plus(self, other: RateCounts) -> RateCounts:
        return RateCounts(self.events + other.events, self.trials + other.trials)

    def minus(self, other: RateCounts) -> RateCounts:
        """The counts since `other` was read, for cumulative counters."""
        return RateCounts(self.events - other.events, self.trials - other.trials)

    def defect(self) -> str:
        """Why these counts cannot be real, or "" when they can."""
        if self.trials < 0 or self.events < 0:
            return f"negative counts ({self.events}/{self.trials}): a counter reset or a bad query"
        if self.events > self.trials:
            return f"{self.events} events among only {self.trials} trials"
        return ""


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts in fixed buckets, Prometheus style.

    Bucket i holds values v with bounds[i-1] < v <= bounds[i]; the last bucket, above every bound,
    is the overflow, so len(counts) == len(bounds) + 1. Categories fit too (bounds 1, 2, 3, ...).
    """

    bounds: tuple[float, ...]
    counts: tuple[int, ...]

    @classmethod
    def of(cls, values: Iterable[float], bounds: Sequence[float] = LATENCY_BOUNDS) -> Histogram:
        """Bin raw values."""
        counts = [0] * (len(bounds) + 1)
        for value in values:
            counts[bisect_left(bounds, value)] += 1
        return cls(tuple(bounds), tuple(counts))

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def samples(self) -> int:
        return self.total

    def plus(self, other: Histogram) -> Histogram:
        return Histogram(self.bounds, tuple(a + b for a, b in zip(self.counts, other.counts,
                                                                  strict=True)))

    def minus(self, other: Histogram) -> Histogram:
        """The counts since `other` was read, for cumulative counters."""
        return Histogram(self.bounds, tuple(a - b for a, b in zip(self.counts, other.counts,
                                                                  strict=True)))

    def defect(self) -> str:
        """Why this histogram cannot be real, or "" when it can."""
        if not self.bounds:
            return "no bucket bounds"
        if len(self.counts) != len(self.bounds) + 1:
            return f"{len(self.counts)} counts for {len(self.bounds)} bounds (expected one more)"
        if not all(map(math.isfinite, self.bounds)):
            return "a bucket bound is not a finite number"
        if list(self.bounds) != sorted(set(self.bounds)):
            return "bucket bounds are not strictly increasing"
        if self.counts and min(self.counts) < 0:
            return "negative bucket counts: a counter reset or a bad query"
        return ""

    def quantile(self, q: float) -> float:
        """The q-quantile, interpolated inside its bucket (the overflow reports its lower bound)."""
        total = self.total
        if total == 0 or not self.bounds:
            return math.nan
        rank, seen = q * total, 0
        for i, count in enumerate(self.counts):
            if count and seen + count >= rank:
                if i == len(self.bounds):
                    return self.bounds[-1]
                low = self.bounds[i - 1] if i else min(0.0, self.bounds[0])
                return low + (self.bounds[i] - low) * max(rank - seen, 0.0) / count
            seen += count
        return self.bounds[-1]

    def above(self, limit: float) -> tuple[float, int] | None:
        """(edge, count above it) for the smallest bound >= limit; None if limit is off the scale.

        Counting above a bucket edge is exact; the edge is at or above `limit`, so a test on it
        tolerates a little more than asked, never less.
        """
        i = bisect_left(self.bounds, limit)
        if i == len(self.bounds):
            return None
        return self.bounds[i], sum(self.counts[i + 1:])


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and sum of squared deviations of a custom metric (mergeable, O(1))."""

    count: int
    mean: float
    m2: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        result = Moments(0, 0.0, 0.0)
        for value in values:
            result = result.plus(Moments(1, float(value), 0.0))
        return result

    @property
    def samples(self) -> int:
        return self.count

    @property
    def variance(self) -> float:
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    def plus(self, other: Moments) -> Moments:
        """Chan's parallel update: exact and numerically stable."""
        n = self.count + other.count
        if n == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return Moments(n, mean, m2)

    def minus(self, other: Moments) -> Moments:
        """The moments since `other` was read, for cumulative readings: Chan's update undone.

        Nothing since (count 0) is the empty moments; a count that went down stays negative so
        `defect()` reports it. A slightly negative m2 is rounding and reads as 0.
        """
        n = self.count - other.count
        if n <= 0:
            return Moments(n, 0.0, 0.0)
        mean = self.mean + (self.mean - other.mean) * other.count / n
        delta = mean - other.mean
        correction = delta * delta * other.count * n / self.count
        m2 = self.m2 - other.m2 - correction
        # The sums behind m2 are as large as the sum of squares; below that scale a negative m2
        # is rounding, not a broken reading.
        scale = self.m2 + other.m2 + correction + self.count * (self.mean ** 2 + other.mean ** 2)
        if m2 < 0 and -m2 <= 1e-12 * scale:
            m2 = 0.0
        return Moments(n, mean, m2)

    def defect(self) -> str:
        """Why these moments cannot be real, or "" when they can."""
        if self.count < 0:
            return f"negative count {self.count}"
        if not (math.isfinite(self.mean) and math.isfinite(self.m2)) or self.m2 < 0:
            return f"non-finite or negative moments (mean {self.mean}, m2 {self.m2})"
        return ""


@dataclass(frozen=True, slots=True)
class Summary:
    """What one version did over a window, per signal family: a baseline, or a live window's data.

    A family is None when its source gave nothing (e.g. no feedback labels yet).
    """

    errors: RateCounts | None = None  # errors among requests
    latency: Histogram | None = None  # request latency, seconds
    accuracy: RateCounts | None = None  # correct answers among labelled feedback
    predictions: Histogram | None = None  # prediction values (or class ids), binned
    custom: Mapping[str, Moments] = field(default_factory=dict)  # by name, without "custom."
    # Model errors replayed on the way back (trials) and reproduced there (events): the input's,
    # already taken out of `errors` (safety rule 12). None when the source does not replay.
    reproduced: RateCounts | None = None


@dataclass(frozen=True, slots=True)
class LiveWindow:
    """The live data to judge: a summary since `started_at`, read at `observed_at`.

    `problems` carries what the metric source reported instead of data: "*" for all signals, or
    a family ("errors", "latency", "accuracy", "predictions", "custom.<metric>") -> reason.
    """

    summary: Summary
    started_at: datetime
    observed_at: datetime
    problems: Mapping[str, str] = field(default_factory=dict)
