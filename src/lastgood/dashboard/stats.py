"""Stats sources for the live charts: where the dashboard reads a replica's real counters.

A source is any `LiveStats` callable: `serving_stats(state)` reads a replica running in the same
process as the control plane (`lastgood server --with-serving`); `metric_source_stats(source,
live)` reads any MetricSource the watch uses (replicas over HTTP, Prometheus), for a control
plane that runs apart from its replicas. Plug one in with `mount(app, services, live_stats=...)`
or by setting `app.state.live_stats`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lastgood.dashboard.metrics import LiveStats, ServedStats, VersionCounters
from lastgood.domain.deployments import Deployment
from lastgood.domain.measurements import Summary, quantile_ms
from lastgood.ports import MetricSource
from lastgood.serving.evidence import VersionStats
from lastgood.serving.state import ServingState

__all__ = ["metric_source_stats", "serving_stats"]

LiveLookup = Callable[[str, str], Deployment | None]
"""(model, env) -> the live deployment, e.g. `lambda m, e: deployments.status(m, env=e).live`."""


def _counters(stats: VersionStats) -> VersionCounters:
    return VersionCounters(version=stats.version, requests=stats.requests, errors=stats.errors,
                           latency_p95_ms=quantile_ms(list(stats.latencies), 0.95),
                           feedback_total=stats.feedback_total,
                           feedback_correct=stats.feedback_correct)


def serving_stats(state: ServingState, *, name: str = "this server's replica") -> LiveStats:
    """Read the counters of a replica held in this process (same env only)."""

    def read(model: str, env: str) -> ServedStats | None:
        table = state.tables.get(model)
        if env != state.env or table is None:
            return None
        live = table.live.number if table.live else None
        versions = tuple(_counters(s) for s in state.recorder.versions(model))
        return ServedStats(source=name, live_version=live, versions=versions)

    return read


def _summary_counters(version: int, summary: Summary) -> VersionCounters:
    p95 = summary.latency.quantile(0.95) if summary.latency is not None else math.nan
    return VersionCounters(
        version=version,
        requests=summary.errors.trials if summary.errors else 0,
        errors=summary.errors.events if summary.errors else 0,
        latency_p95_ms=round(p95 * 1000, 3) if math.isfinite(p95) else None,
        feedback_total=summary.accuracy.trials if summary.accuracy else 0,
        feedback_correct=summary.accuracy.events if summary.accuracy else 0)


def metric_source_stats(source: MetricSource, live: LiveLookup) -> LiveStats:
    """Read the live version's window since it went live from a MetricSource.

    The window is cumulative, like a replica's counters, so the series takes its changes; a
    source that is down gives a sample without numbers (its reason in `source`), never zeros.
    """

    def read(model: str, env: str) -> ServedStats | None:
        deployment = live(model, env)
        if deployment is None:
            return None
        window = source.window(model, env, deployment.version, since=deployment.started_at)
        if "*" in window.problems:
            return ServedStats(source=f"{source.describe()}: {window.problems['*']}",
                               live_version=deployment.version, versions=())
        return ServedStats(source=source.describe(), live_version=deployment.version,
                           versions=(_summary_counters(deployment.version, window.summary),))

    return read
