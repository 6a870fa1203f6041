"""Rich tables and panels for people; every command also has --json for scripts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def when(value: Any) -> str:
    """Short local-looking UTC times: the date only when it is not today."""
    if not value:
        return "—"
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    return str(value.strftime("%H:%M:%S" if value.date() == today else "%Y-%m-%d %H:%M"))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*(str(x) if x is not None else "—" for x in row))
    return t


def models_table(models: Sequence[Model]) -> Table:
    return table("Models", ["name", "versions", "latest", "created"],
                 [(m.name, m.version_count, m.latest_number, when(m.created_at)) for m in models])


def versions_table(model: str, versions: Sequence[Version]) -> Table:
    def status(v: Version) -> str:
        style = STATUS_STYLE.get(str(v.status), "")
        unsafe = " [red](unsafe format)[/]" if v.unsafe_format else ""
        return f"[{style}]{v.status}[/]{unsafe}"

    def metrics(v: Version) -> str:
        return ", ".join(f"{k}={val:g}" for k, val in sorted(v.metrics.items()))

    return table(f"Versions of {model}",
                 ["version", "tag", "status", "flavor", "digest", "metrics", "created", "by"],
                 [(v.number, v.tag, status(v), v.flavor, v.digest[:12], metrics(v),
                   when(v.created_at), v.created_by) for v in versions])


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

    return table("Events", ["#", "at", "actor", "action", "model/env", "outcome", "reason"],
                 [(e.seq, when(e.at), e.actor, e.action, where(e), outcome(e),
                   e.draft.reason[:48]) for e in events])


def history_table(model: str, env: str, history: Sequence[Deployment]) -> Table:
    def verified(d: Deployment) -> str:
        if not d.verified:
            return "—"
        return f"[green]✓[/] {d.verified.approver}"

    return table(f"History of {model} in {env}",
                 ["#", "version", "from", "until", "by", "how it ended", "verified"],
                 [(d.id, d.version, when(d.started_at), when(d.ended_at) if d.ended_at
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
