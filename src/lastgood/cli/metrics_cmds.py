"""`lastgood metrics`: the metric history the replicas wrote, as the dashboard draws it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from lastgood.cli.app import get, json_option
from lastgood.cli.render import table
from lastgood.domain.history import parse_span
from lastgood.domain.history_view import BaselineSpan, HistoryView, SeriesPoint, view_to_json

TABLE_ROWS = 60
"""Buckets a table shows: the span is cut into at most this many (--json has them all)."""


def iso(at: datetime | None) -> str:
    """A time as ISO 8601 in UTC, with its zone."""
    if at is None:
        return "now"
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def _number(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _baseline(span: BaselineSpan) -> str:
    if span.reference_version is None:
        return f"v{span.version} from {iso(span.start)}: no baseline yet"
    shown = ", ".join(f"{k} {v:g}" for k, v in sorted(span.values.items())
                      if k in ("error_rate", "latency_p95_ms", "accuracy"))
    return (f"v{span.version} from {iso(span.start)}: judged against "
            f"v{span.reference_version}'s record ({shown or 'no numbers'})")


def rows(points: Sequence[SeriesPoint], resolution_s: int) -> Iterator[tuple[str, ...]]:
    """Table rows, a gap row where buckets are missing (nothing served or reported)."""
    previous: datetime | None = None
    for p in points:
        if previous is not None and p.at - previous > timedelta(seconds=resolution_s):
            missing = (p.at - previous).total_seconds() - resolution_s
            yield ("", "", f"gap {duration(missing)}", "", "", "", "")
        previous = p.at
        yield (iso(p.at), f"v{p.version}", str(p.requests),
               _number(p.error_rate * 100 if p.error_rate is not None else None, ".2f"),
               _number(p.latency_p95_ms, ".1f"), _number(p.latency_p99_ms, ".1f"),
               _number(p.accuracy, ".3f"))


MAX_CUSTOM = 3
"""Custom metric columns a table shows (the first by name; --json has them all)."""


def custom_names(points: Sequence[SeriesPoint]) -> list[str]:
    return sorted({name for p in points for name in p.custom})[:MAX_CUSTOM]


def signal_rows(points: Sequence[SeriesPoint], names: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """Drift and custom metrics of the buckets that have any."""
    for p in points:
        if p.drift_psi is None and not any(n in p.custom for n in names):
            continue
        yield (iso(p.at), f"v{p.version}", _number(p.drift_psi, ".3f"),
               *(_number(p.custom.get(n), ".4g") for n in names))


def signals_table(view: HistoryView) -> Table | None:
    """Drift (PSI against the span's baseline) and the feedback's custom metrics (means), or
    None when no bucket has either."""
    names = custom_names(view.points)
    found = list(signal_rows(view.points, names))
    if not found:
        return None
    return table("drift and custom metrics (means per bucket)",
                 ["time", "ver", "drift psi", *(f"custom.{n}" for n in names)], found)


def history_table(view: HistoryView) -> Table:
    title = (f"{view.model} in {view.env}: {iso(view.since)} to {iso(view.until)}, "
             f"{duration(view.resolution_s)} buckets")
    return table(title, ["time", "ver", "requests", "err %", "p95 ms", "p99 ms", "accuracy"],
                 rows(view.points, view.resolution_s))


@click.command("metrics")
@click.argument("name")
@click.option("--env", "env_name", required=True)
@click.option("--since", "since", default="1h", show_default=True, metavar="SPAN",
              help="How far back: 30m, 1h, 1d, 1w (at most 30d).")
@json_option
@click.pass_context
def metrics(ctx: click.Context, name: str, env_name: str, since: str, as_json: bool) -> None:
    """The metric history of NAME in ENV: requests, errors, latency, accuracy per version."""
    cli = get(ctx)
    span = parse_span(since)
    history = cli.services.history
    if as_json:
        cli.emit_json(view_to_json(history.view(name, env=env_name, span=span)))
        return
    view = history.view(name, env=env_name, span=span, buckets=TABLE_ROWS)
    out = cli.out
    for span_of in view.spans:
        out.print(f"baseline: {_baseline(span_of)}", soft_wrap=False)
    for marker in view.markers:
        out.print(f"{iso(marker.at)}  {marker.kind.value:<8}  {marker.text}")
    if not view.points:
        out.print(f"no metric history for {name} in {env_name} in the last {since}: the "
                  "replicas write it while they serve (lastgood serve)")
        return
    out.print(history_table(view))
    signals = signals_table(view)
    if signals is not None:
        out.print(signals)
    if view.truncated:
        out.print("[yellow]cut short: too many points; ask for a shorter --since[/]")
