"""Stats sources for the live charts: where the dashboard reads a replica's real counters.

A source is any `LiveStats` callable; `serving_stats(state)` reads a replica running in the same
process as the control plane (`lastgood server` with the prediction API). Plug one in with
`mount(app, services, live_stats=...)` or by setting `app.state.live_stats`.
"""

from __future__ import annotations

from lastgood.dashboard.metrics import LiveStats, ServedStats, VersionCounters
from lastgood.serving.evidence import VersionStats
from lastgood.serving.state import ServingState

__all__ = ["serving_stats"]


def _p95_ms(latencies: list[float]) -> float | None:
    ordered = sorted(latencies)  # a copy: the replica's loop may append while we read
    if not ordered:
        return None
    return round(ordered[min(int(0.95 * len(ordered)), len(ordered) - 1)] * 1000, 3)


def _counters(stats: VersionStats) -> VersionCounters:
    return VersionCounters(version=stats.version, requests=stats.requests, errors=stats.errors,
                           latency_p95_ms=_p95_ms(list(stats.latencies)),
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
