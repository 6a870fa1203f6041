"""What a person reads of the metric history: one series per version, the baseline each span was
judged against, and the deploy / rollback / verify markers; pure, from points and deployments.

The baseline of a span is the one the watch judges that deployment against
(`watching.reference_deployment`): after a rollback, the restored version's own pre-failure
record, never the baseline of the version rolled back from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from lastgood.domain.baselines import headline
from lastgood.domain.deployments import Deployment, DeploymentEnd
from lastgood.domain.history import Bucket, StoredPoint, rollup_stored
from lastgood.domain.measurements import Histogram, Summary
from lastgood.domain.signals import DEFAULT_TOLERANCE, SignalKind
from lastgood.domain.watching import recorded_baseline, reference_deployment, stated_baseline

CHART_SIGNALS: Mapping[str, SignalKind] = {
    "latency_p95_ms": SignalKind.LATENCY, "error_rate": SignalKind.ERROR_RATE,
    "accuracy": SignalKind.ACCURACY}
"""The signals the dashboard draws, with the tolerance (lastgood.domain.health) of each."""


class MarkerKind(StrEnum):
    DEPLOY = "deploy"  # a version went live by a deploy
    ROLLBACK = "rollback"  # a version went live because the one before was rolled back
    VERIFY = "verify"  # a deployment got its verified record (its baseline)


class SeriesPoint(NamedTuple):
    """One bucket of one version, every replica merged (immutable; a tuple because a reading
    draws up to 1500 of them and a frozen dataclass costs several times more to build)."""

    at: datetime
    version: int
    requests: int
    errors: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    labelled: int
    accuracy: float | None
    drift_psi: float | None  # predictions against the span's baseline (None: nothing to compare)
    custom: Mapping[str, float]  # means, by metric name


@dataclass(frozen=True, slots=True)
class BaselineSpan:
    """A deployment's time on air, and the baseline it was judged against there."""

    start: datetime
    end: datetime | None  # None: still live
    version: int
    deployment_id: int
    reference_version: int | None  # whose record judged it (None: no baseline yet)
    reference_deployment: int | None
    values: Mapping[str, float]  # headline numbers: error_rate, latency_p95_ms, accuracy, ...
    band: Mapping[str, tuple[float, float]]  # baseline to the edge a default policy tolerates


@dataclass(frozen=True, slots=True)
class Marker:
    at: datetime
    kind: MarkerKind
    version: int
    text: str


@dataclass(frozen=True, slots=True)
class HistoryView:
    """The history of (model, env) over [since, until) at `resolution_s`."""

    model: str
    env: str
    since: datetime
    until: datetime
    resolution_s: int
    points: tuple[SeriesPoint, ...]
    spans: tuple[BaselineSpan, ...]
    markers: tuple[Marker, ...]
    truncated: bool  # the reading hit its row limit: the newest points are missing


def _ms(quantiles: tuple[float, float, float] | None) -> list[float | None]:
    """Latency p50, p95, p99 in ms (None without latency)."""
    if quantiles is None:
        return [None, None, None]
    return [round(v * 1000, 3) if math.isfinite(v) else None for v in quantiles]


def _rate(pair: tuple[int, int] | None) -> tuple[int, int, float | None]:
    events, trials = pair if pair else (0, 0)
    return events, trials, events / trials if trials > 0 else None


class DriftBase:
    """A baseline's predictions prepared once per reading for the PSI of many buckets: the
    same index as `sequential.psi` (half a count added to every bin), worked out from the
    live bucket's non-empty bins only (an empty bin's term depends on the live total alone)."""

    def __init__(self, base: Histogram) -> None:
        n = len(base.counts)
        total = sum(base.counts) + 0.5 * n
        self.bounds, self.n = base.bounds, n
        self.b = [(c + 0.5) / total for c in base.counts]
        self.lb = [math.log(x) for x in self.b]
        self.sum_b, self.sum_lb = sum(self.b), sum(self.lb)
        self.sum_b_lb = sum(x * y for x, y in zip(self.b, self.lb, strict=True))

    def psi(self, pairs: Sequence[int]) -> float:
        """PSI of live counts given as [bin, count, ...] (bins in range, counts >= 0)."""
        t = sum(pairs[1::2]) + 0.5 * self.n
        z = 0.5 / t
        lz = math.log(z)
        # every bin as if empty, then the non-empty ones corrected
        total = self.n * z * lz - z * self.sum_lb - lz * self.sum_b + self.sum_b_lb
        for i, c in zip(pairs[::2], pairs[1::2], strict=True):
            if c:
                x, b, lb = (c + 0.5) / t, self.b[i], self.lb[i]
                total += (x - b) * (math.log(x) - lb) - (z - b) * (lz - lb)
        return total


def drift_base(reference: Summary | None) -> DriftBase | None:
    """The prepared predictions of a reference (None without a usable distribution)."""
    base = reference.predictions if reference else None
    return DriftBase(base) if base is not None and base.total else None


def _drift(bucket: Bucket, base: DriftBase | None) -> float | None:
    if base is None:
        return None
    try:
        live = bucket.prediction_bins()
    except (KeyError, TypeError, ValueError, IndexError):
        return None  # a damaged predictions histogram: no drift, the rest of the bucket drawn
    if live is None or live[0] != base.bounds or not any(live[1][1::2]) \
            or len(live[0]) + 1 != base.n:
        return None
    return round(base.psi(live[1]), 4)


def series_point(bucket: Bucket, reference: DriftBase | None) -> SeriesPoint:
    """A merged bucket as the numbers a chart draws."""
    errors, requests, error_rate = _rate(bucket.errors)
    _, labelled, accuracy = _rate(bucket.accuracy)
    custom = ({k: round(m.mean, 6) for k, m in sorted(bucket.custom.items()) if m.count}
              if bucket.custom else {})
    p50, p95, p99 = _ms(bucket.quantiles)
    return SeriesPoint(
        at=bucket.at, version=bucket.version, requests=requests, errors=errors,
        error_rate=error_rate, latency_p50_ms=p50, latency_p95_ms=p95,
        latency_p99_ms=p99, labelled=labelled, accuracy=accuracy,
        drift_psi=_drift(bucket, reference), custom=custom)


def baseline_values(reference: Deployment | None) -> dict[str, float]:
    """The numbers a deployment's record states or measured, in the charts' names and units."""
    if reference is None:
        return {}
    recorded = recorded_baseline(reference)
    values = headline(recorded) if recorded is not None else {}
    stated = stated_baseline(reference)
    if stated is not None:
        for name, value in stated.values.items():
            if name in ("error_rate", "accuracy") or name.startswith("custom."):
                values[name] = value
        for q, seconds in stated.latency.items():
            values[f"latency_p{round(q * 100)}_ms"] = seconds * 1000
    for name, value in reference.verified.baseline.items() if reference.verified else ():
        if name in CHART_SIGNALS and name not in values and math.isfinite(value):
            values[name] = value
    return values


def tolerated_band(values: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Baseline to the value a default health policy still tolerates, per charted signal.

    Tolerated = baseline +/- max(relative * |baseline|, absolute); the band runs in the
    direction the signal gets worse.
    """
    band: dict[str, tuple[float, float]] = {}
    for key, kind in CHART_SIGNALS.items():
        if key not in values:
            continue
        value = values[key]
        relative, absolute = DEFAULT_TOLERANCE[kind]
        room = max(relative * abs(value), absolute * (1000.0 if kind is SignalKind.LATENCY
                                                      else 1.0))
        edge = value - room if kind is SignalKind.ACCURACY else value + room
        low, high = sorted((value, max(edge, 0.0)))
        band[key] = (round(low, 6), round(high, 6))
    return band


def _numbers_only(history: Sequence[Deployment], dep: Deployment) -> Deployment | None:
    """A record with headline numbers only (no measured summary, nothing stated), picked by
    the same rules: shown, though the watch cannot judge against it."""
    if dep.verified is not None:
        return dep
    newest_first = sorted((d for d in history if d.id != dep.id and d.verified is not None),
                          key=lambda d: (d.started_at, d.id), reverse=True)
    same = next((d for d in newest_first if d.version == dep.version), None)
    return same or next((d for d in newest_first if d.version != dep.version
                         and d.end is not DeploymentEnd.ROLLED_BACK), None)


def judging_deployment(history: Sequence[Deployment], dep: Deployment) -> Deployment | None:
    """The deployment whose record `dep` is judged against (the watch's rules; a record with
    numbers only is shown too): after a rollback, the restored version's own."""
    return reference_deployment(history, dep) or _numbers_only(history, dep)


def span_of(dep: Deployment, history: Sequence[Deployment]) -> BaselineSpan:
    ref = judging_deployment(history, dep)
    values = baseline_values(ref)
    return BaselineSpan(start=dep.started_at, end=dep.ended_at, version=dep.version,
                        deployment_id=dep.id, reference_version=ref.version if ref else None,
                        reference_deployment=ref.id if ref else None,
                        values={k: round(v, 6) for k, v in values.items()},
                        band=tolerated_band(values))


def markers_of(history: Sequence[Deployment]) -> list[Marker]:
    """Deploys, rollbacks and verifications, oldest first."""
    ordered = sorted(history, key=lambda d: (d.started_at, d.id))
    found: list[Marker] = []
    for before, dep in zip([None, *ordered], ordered, strict=False):
        rollback = before is not None and before.end is DeploymentEnd.ROLLED_BACK
        kind = MarkerKind.ROLLBACK if rollback else MarkerKind.DEPLOY
        text = (f"rollback v{before.version} -> v{dep.version}" if rollback and before
                else f"deploy v{dep.version}")
        found.append(Marker(dep.started_at, kind, dep.version,
                            f"{text}: {dep.reason}" if dep.reason else text))
        if dep.verified is not None:
            found.append(Marker(dep.verified.at, MarkerKind.VERIFY, dep.version,
                                f"verified v{dep.version} by {dep.verified.approver}"))
    return sorted(found, key=lambda m: m.at)


def _overlaps(dep: Deployment, since: datetime, until: datetime) -> bool:
    return dep.started_at < until and (dep.ended_at is None or dep.ended_at >= since)


def _references(spans: Sequence[BaselineSpan], history: Sequence[Deployment]) -> dict[
        int, list[tuple[float, float, DriftBase | None]]]:
    """Per version, (start, end) of each of its spans in epoch seconds and the predictions of
    the record it was judged against (each record parsed and prepared once)."""
    parsed = {d.id: drift_base(recorded_baseline(d)) for d in history
              if any(s.reference_deployment == d.id for s in spans)}
    found: dict[int, list[tuple[float, float, DriftBase | None]]] = {}
    for s in spans:
        end = s.end.timestamp() if s.end is not None else math.inf
        reference = parsed.get(s.reference_deployment) if s.reference_deployment else None
        found.setdefault(s.version, []).append((s.start.timestamp(), end, reference))
    return found


def _reference_at(spans: Sequence[tuple[float, float, DriftBase | None]], at_s: int,
                  resolution_s: int) -> DriftBase | None:
    """The reference of the version's span that overlaps the bucket (the latest that started)."""
    found = None
    for start, end, reference in spans:
        if start < at_s + resolution_s and end >= at_s:
            found = reference
    return found


def build_view(model: str, env: str, *, points: Sequence[StoredPoint],
               history: Sequence[Deployment], since: datetime, until: datetime,
               resolution_s: int, truncated: bool) -> HistoryView:
    """The view of the points and the deployments of (model, env) over [since, until)."""
    spans = [span_of(d, history) for d in sorted(history, key=lambda d: (d.started_at, d.id))
             if _overlaps(d, since, until)]
    references = _references(spans, history)
    merged, _ = rollup_stored(points, resolution_s)
    series = tuple(series_point(b, _reference_at(references.get(b.version, ()), b.at_s,
                                                 resolution_s)) for b in merged)
    markers = [m for m in markers_of(history) if since <= m.at < until]
    return HistoryView(model=model, env=env, since=since, until=until,
                       resolution_s=resolution_s, points=series, spans=tuple(spans),
                       markers=tuple(markers), truncated=truncated)


# -- the one JSON form (API, CLI --json, archive, remote client) -------------------------------

def _t(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def view_to_json(view: HistoryView) -> dict[str, Any]:
    """The view as plain JSON types; times as ISO 8601 with their zone."""
    return {
        "model": view.model, "env": view.env, "since": _t(view.since), "until": _t(view.until),
        "resolution_s": view.resolution_s, "truncated": view.truncated,
        "points": [{"t": _t(p.at), "version": p.version, "requests": p.requests,
                    "errors": p.errors, "error_rate": p.error_rate,
                    "latency_p50_ms": p.latency_p50_ms, "latency_p95_ms": p.latency_p95_ms,
                    "latency_p99_ms": p.latency_p99_ms, "labelled": p.labelled,
                    "accuracy": p.accuracy, "drift_psi": p.drift_psi, "custom": dict(p.custom)}
                   for p in view.points],
        "spans": [{"start": _t(s.start), "end": _t(s.end), "version": s.version,
                   "deployment_id": s.deployment_id, "reference_version": s.reference_version,
                   "reference_deployment": s.reference_deployment, "values": dict(s.values),
                   "band": {k: list(v) for k, v in s.band.items()}} for s in view.spans],
        "markers": [{"t": _t(m.at), "kind": m.kind.value, "version": m.version, "text": m.text}
                    for m in view.markers],
    }


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def view_from_json(data: Mapping[str, Any]) -> HistoryView:
    """The view `view_to_json` wrote (a remote control plane's answer); KeyError/ValueError
    for anything else."""
    points = tuple(SeriesPoint(
        at=_time(p["t"]), version=int(p["version"]), requests=int(p["requests"]),
        errors=int(p["errors"]), error_rate=p["error_rate"], latency_p50_ms=p["latency_p50_ms"],
        latency_p95_ms=p["latency_p95_ms"], latency_p99_ms=p["latency_p99_ms"],
        labelled=int(p["labelled"]), accuracy=p["accuracy"], drift_psi=p["drift_psi"],
        custom=dict(p.get("custom") or {})) for p in data["points"])
    spans = tuple(BaselineSpan(
        start=_time(s["start"]), end=_time(s["end"]) if s["end"] else None,
        version=int(s["version"]), deployment_id=int(s["deployment_id"]),
        reference_version=s["reference_version"], reference_deployment=s["reference_deployment"],
        values=dict(s["values"]), band={k: (float(v[0]), float(v[1]))
                                        for k, v in s["band"].items()}) for s in data["spans"])
    markers = tuple(Marker(_time(m["t"]), MarkerKind(m["kind"]), int(m["version"]),
                           str(m["text"])) for m in data["markers"])
    return HistoryView(model=str(data["model"]), env=str(data["env"]),
                       since=_time(data["since"]), until=_time(data["until"]),
                       resolution_s=int(data["resolution_s"]), points=points, spans=spans,
                       markers=markers, truncated=bool(data["truncated"]))
