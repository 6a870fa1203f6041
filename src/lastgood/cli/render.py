"""Rich tables and panels for people; every command also has --json for scripts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from lastgood.domain.audit import Event
from lastgood.domain.deployments import Deployment
from lastgood.domain.operations import Candidate, CheckStatus
from lastgood.domain.versions import Model, Version

STATUS_STYLE = {"active": "green", "quarantined": "red", "retired": "dim"}
CHECK_STYLE = {CheckStatus.PASS: "green", CheckStatus.WARN: "yellow", CheckStatus.FAIL: "red",
               CheckStatus.SKIP: "dim"}


UTC_COLUMN = " (UTC)"
"""A table column whose header ends so holds times without the zone (the header says it);
such columns never wrap, so a time stays on one line at 80 columns."""


def when(value: Any, *, relative: bool = False, now: datetime | None = None,
         zone: bool = True) -> str:
    """The one way a time is printed: date, time and zone (UTC), with how long ago beside it
    when `relative` (`2026-05-01 12:00:03 UTC (5 min ago)`); "—" for none. `zone=False` is
    for a table column whose header names the zone (UTC_COLUMN)."""
    if not value:
        return "—"
    at = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    text = at.strftime("%Y-%m-%d %H:%M:%S UTC" if zone else "%Y-%m-%d %H:%M:%S")
    return f"{text} ({ago(at, now=now)})" if relative else text


def cell_time(value: Any) -> str:
    """A time in a UTC_COLUMN."""
    return when(value, zone=False)


def ago(value: datetime, *, now: datetime | None = None) -> str:
    """How long before `now` `value` was, in the largest unit that fits ("12 s ago",
    "3 h ago"; "in 5 min" for a time still to come)."""
    at = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    size = abs(seconds)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= span:
            amount = f"{size // span:.0f} {unit}"
            break
    else:
        amount = f"{size:.0f} s"
    return f"{amount} ago" if seconds >= 0 else f"in {amount}"


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, no_wrap=c.endswith(UTC_COLUMN))
    for row in rows:
        t.add_row(*(str(x) if x is not None else "—" for x in row))
    return t


def models_table(models: Sequence[Model]) -> Table:
    return table("Models", ["name", "versions", "latest", "created (UTC)"],
                 [(m.name, m.version_count, m.latest_number, cell_time(m.created_at))
                  for m in models])


def versions_table(model: str, versions: Sequence[Version]) -> Table:
    def status(v: Version) -> str:
        style = STATUS_STYLE.get(str(v.status), "")
        unsafe = " [red](unsafe format)[/]" if v.unsafe_format else ""
        return f"[{style}]{v.status}[/]{unsafe}"

    def metrics(v: Version) -> str:
        return ", ".join(f"{k}={val:g}" for k, val in sorted(v.metrics.items()))

    return table(f"Versions of {model}",
                 ["version", "tag", "status", "flavor", "digest", "metrics", "created (UTC)",
                  "by"],
                 [(v.number, v.tag, status(v), v.flavor, v.digest[:8], metrics(v),
                   cell_time(v.created_at), v.created_by) for v in versions])


def show_version(console: Console, v: Version) -> None:
    console.print(f"[bold]{v.ref}[/]  status [bold]{v.status}[/]  flavor {v.flavor}"
                  + ("  [red]UNSAFE FORMAT (pickle)[/]" if v.unsafe_format else ""))
    console.print(f"digest  {v.digest}")
    console.print(f"created {when(v.created_at)} by {v.created_by}")
    console.print(table("Artifacts", ["path", "size", "sha256"],
                        [(f.path, f.size, f.sha256) for f in v.manifest.files]))
    console.print(f"runtime: python {v.runtime.python or '?'}; "
                  + ", ".join(f"{k}=={val}" for k, val in sorted(v.runtime.packages.items())))
    if v.schema.inputs or v.schema.outputs:
        console.print(table("Schema", ["side", "name", "dtype", "shape"],
                            [("input", c.name, c.dtype, c.shape or "") for c in v.schema.inputs]
                            + [("output", c.name, c.dtype, c.shape or "")
                               for c in v.schema.outputs]))
    for label, mapping in (("metrics", v.metrics), ("provenance", v.provenance)):
        if mapping:
            console.print(f"{label}: " + ", ".join(f"{k}={val}" for k, val in
                                                   sorted(mapping.items())))
    console.print(f"golden examples: {len(v.golden)}; labels: {', '.join(v.labels) or '—'}")


def events_table(events: Sequence[Event]) -> Table:
    def outcome(e: Event) -> str:
        o = e.draft.outcome
        return o if o == "ok" else f"[red]{o}[/]"

    def where(e: Event) -> str:
        return "/".join(x for x in (e.draft.model, e.draft.env) if x) or "—"

    places = {where(e) for e in events}
    if len(places) == 1:  # one model/env: said once in the title, room for the reason
        return table(f"Events of {places.pop()}", ["#", "at (UTC)", "actor", "action", "outcome",
                                                   "reason"],
                     [(e.seq, cell_time(e.at), e.actor, e.action, outcome(e),
                       e.draft.reason[:48]) for e in events])
    return table("Events", ["#", "at (UTC)", "actor", "action", "model/env", "outcome",
                            "reason"],
                 [(e.seq, cell_time(e.at), e.actor, e.action, where(e), outcome(e),
                   e.draft.reason[:48]) for e in events])


def history_table(model: str, env: str, history: Sequence[Deployment]) -> Table:
    def verified(d: Deployment) -> str:
        if not d.verified:
            return "—"
        return f"[green]✓[/] {d.verified.approver}"

    return table(f"History of {model} in {env}",
                 ["#", "version", "from (UTC)", "until (UTC)", "by", "how it ended",
                  "verified"],
                 [(d.id, d.version, cell_time(d.started_at), cell_time(d.ended_at) if d.ended_at
                   else "[bold green]live[/]", d.deployed_by, d.end or "", verified(d))
                  for d in history])


def candidates_table(candidates: Sequence[Candidate], target: int | None) -> Table:
    def verdict(c: Candidate) -> str:
        if c.version == target:
            return "[bold green]TARGET[/]"
        return "[red]refused[/]"

    def checks(c: Candidate) -> str:
        return " ".join(f"[{CHECK_STYLE[r.status]}]{r.name}:{r.status}[/]" for r in c.checks) \
            or "—"

    return table("Candidates", ["version", "tag", "verdict", "why", "checks"],
                 [(c.version, c.tag, verdict(c), "; ".join(c.refusals) or "passed", checks(c))
                  for c in candidates])


def checks_table(candidate: Candidate) -> Table:
    return table(f"Preflight of version {candidate.version}",
                 ["check", "result", "evidence", "ms"],
                 [(r.name, f"[{CHECK_STYLE[r.status]}]{r.status}[/]", r.summary,
                   f"{r.duration_ms:.1f}") for r in candidate.checks])
