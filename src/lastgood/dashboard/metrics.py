"""Live metrics for the dashboard's charts: points sampled from a serving stats source, and the
verified baseline they are judged against.

Nothing here invents data. With no stats source the series is empty and says so (`source` is
None); with one, every point comes from the counters a serving replica really keeps. Counters are
cumulative, so a point is the change since the previous sample of the same version (the first
sample of a version is its whole life so far).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lastgood.domain.deployments import Deployment
from lastgood.domain.health import DEFAULT_TOLERANCE, SignalKind

__all__ = ["LiveStats", "MetricsSeries", "ServedStats", "VersionCounters", "baseline_of"]

SIGNALS = ("latency_p95_ms", "error_rate", "accuracy")

# Baseline names as verify records them (CLI examples, the watcher's signal names), mapped to
# the chart's keys with the factor that turns them into the chart's unit.
BASELINE_ALIASES: Mapping[str, Sequence[tuple[str, float]]] = {
    "latency_p95_ms": (("latency_p95_ms", 1.0), ("p95_ms", 1.0), ("latency_p95", 1000.0)),
    "error_rate": (("error_rate", 1.0),),
    "accuracy": (("accuracy", 1.0),),
}
KINDS = {"latency_p95_ms": SignalKind.LATENCY, "error_rate": SignalKind.ERROR_RATE,
         "accuracy": SignalKind.ACCURACY}


@dataclass(frozen=True, slots=True)
class VersionCounters:
    """Cumulative counters of one served version, as a replica keeps them."""

    version: int
    requests: int
    errors: int
    latency_p95_ms: float | None
    feedback_total: int = 0
    feedback_correct: int = 0


@dataclass(frozen=True, slots=True)
class ServedStats:
    """What a stats source reports for one (model, env) right now."""

    source: str  # a short human name of where the numbers come from
    live_version: int | None
    versions: tuple[VersionCounters, ...]


LiveStats = Callable[[str, str], ServedStats | None]
"""(model, env) -> the serving counters, or None when this source does not serve that pair."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def baseline_of(deployment: Deployment | None) -> dict[str, float] | None:
    """The verified baseline of a deployment in the chart's keys and units (None: unverified)."""
    if deployment is None or deployment.verified is None:
        return None
    recorded = deployment.verified.baseline
    out: dict[str, float] = {}
    for key, aliases in BASELINE_ALIASES.items():
        for name, factor in aliases:
            value = _number(recorded.get(name))
            if value is not None:
                out[key] = value * factor
                break
    return out


def tolerated_band(baseline: Mapping[str, float]) -> dict[str, list[float]]:
    """Baseline to the value a default health policy still tolerates, per signal.

    Tolerated = baseline +/- max(relative * |baseline|, absolute) (lastgood.domain.health);
    the band runs in the direction the signal gets worse.
    """
    band: dict[str, list[float]] = {}
    for key, value in baseline.items():
        relative, absolute = DEFAULT_TOLERANCE[KINDS[key]]
        room = max(relative * abs(value), absolute * (1000.0 if key == "latency_p95_ms" else 1.0))
        edge = value - room if key == "accuracy" else value + room
        band[key] = sorted([value, max(edge, 0.0)])
    return band


@dataclass(frozen=True, slots=True)
class _Seen:
    counters: VersionCounters
    at: datetime


def point(now: VersionCounters, before: VersionCounters | None, at: datetime) -> dict[str, Any]:
    """One chart point: rates over the change since `before` (or the whole life when None)."""
    zero = VersionCounters(now.version, 0, 0, None)
    base = before if before is not None and before.requests <= now.requests else zero
    requests = now.requests - base.requests
    labelled = now.feedback_total - base.feedback_total
    correct = now.feedback_correct - base.feedback_correct
    return {"t": at.isoformat(), "version": now.version,
            "latency_p95_ms": now.latency_p95_ms if requests > 0 else None,
            "error_rate": (now.errors - base.errors) / requests if requests > 0 else None,
            "accuracy": correct / labelled if labelled > 0 else None}


class MetricsSeries:
    """Points per (model, env), sampled when asked and kept in a ring buffer.

    The dashboard polls every few seconds while it is open, so the series grows while someone
    watches; samples closer than `min_interval_s` reuse the previous one.
    """

    def __init__(self, *, capacity: int = 900, min_interval_s: float = 1.0) -> None:
        self._capacity, self._min_interval_s = capacity, min_interval_s
        self._points: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        self._seen: dict[tuple[str, str, int], _Seen] = {}
        self._sampled: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def sample(self, model: str, env: str, stats: ServedStats | None,
               *, at: datetime) -> list[dict[str, Any]]:
        """Record a sample of `stats` taken `at`, then return the series of (model, env)."""
        key = (model, env)
        with self._lock:
            last = self._sampled.get(key)
            due = last is None or (at - last).total_seconds() >= self._min_interval_s
            if stats is not None and due:
                self._sampled[key] = at
                self._record(key, stats, at)
            return list(self._points.get(key, ()))

    def _record(self, key: tuple[str, str], stats: ServedStats, at: datetime) -> None:
        live = next((c for c in stats.versions if c.version == stats.live_version), None)
        for counters in stats.versions:
            seen_key = (*key, counters.version)
            before = self._seen.get(seen_key)
            self._seen[seen_key] = _Seen(counters, at)
            if counters is not live or (before is not None and before.counters == counters):
                continue
            found = point(counters, before.counters if before else None, at)
            if any(found[name] is not None for name in SIGNALS):
                self._points.setdefault(key, deque(maxlen=self._capacity)).append(found)
