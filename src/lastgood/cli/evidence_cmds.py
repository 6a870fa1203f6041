"""`archive list|show|export` and `audit verify|export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lastgood.cli.app import get, json_option
from lastgood.cli.render import table, when
from lastgood.domain.errors import IntegrityError, InvalidInput
from lastgood.services.views import archive_view


@click.group()
def archive() -> None:
    """Forensic bundles of failed deployments."""


@archive.command("list")
@click.option("--model")
@click.option("--env", "env_name")
@json_option
@click.pass_context
def archive_list(ctx: click.Context, model: str | None, env_name: str | None,
                 as_json: bool) -> None:
    """List bundles, newest first."""
    cli = get(ctx)
    found = cli.services.archives.list(model=model, env=env_name)
    if as_json:
        cli.emit_json([archive_view(a) for a in found])
        return
    cli.out.print(table("Archives", ["id", "model", "env", "failed version", "size", "sha256",
                                     "created"],
                        [(a.id, a.model, a.env, a.version, a.size, a.sha256[:12],
                          when(a.created_at)) for a in found]))


@archive.command("show")
@click.argument("archive_id")
@json_option
@click.pass_context
def archive_show(ctx: click.Context, archive_id: str, as_json: bool) -> None:
    """Show a bundle's manifest and members (verified against their sha256)."""
    cli = get(ctx)
    record, members = cli.services.archives.show(archive_id)
    if as_json:
        cli.emit_json(archive_view(record) | {"members": sorted(members)})
        return
    cli.out.print(f"[bold]{record.id}[/] {record.model}/{record.env} failed v{record.version} "
                  f"(operation {record.operation_id}) sha256 {record.sha256}")
    files = record.manifest.get("files", {})
    cli.out.print(table("Members", ["name", "size", "sha256"],
                        [(name, meta["size"], meta["sha256"][:16])
                         for name, meta in sorted(files.items())]))
    trigger = json.loads(members.get("trigger.json", b"{}"))
    cli.out.print(f"trigger: {trigger.get('reason')}")


@archive.command("export")
@click.argument("archive_id")
@click.argument("dest", type=click.Path(path_type=Path))
@click.pass_context
def archive_export(ctx: click.Context, archive_id: str, dest: Path) -> None:
    """Write a bundle's tar to DEST after verifying every member."""
    cli = get(ctx)
    record = cli.services.archives.export(archive_id, dest)
    cli.out.print(f"exported {record.id} ({record.size} bytes, sha256 {record.sha256[:12]})")


@click.group()
def audit() -> None:
    """The hash-chained audit trail."""


@audit.command("verify")
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, as_json: bool) -> None:
    """Check the chain; name the first edited, deleted, inserted or reordered event."""
    cli = get(ctx)
    report = cli.services.audit.verify()
    if as_json:
        cli.emit_json({"ok": report.ok, "checked": report.checked,
                       "first_bad": report.first_bad, "problem": report.problem})
    elif report.ok:
        cli.out.print(f"[green]audit chain intact[/]: {report.checked} events")
    if not report.ok:
        raise IntegrityError(f"audit chain broken at event #{report.first_bad}: "
                             f"{report.problem}",
                             fix="restore the registry database from a backup and compare "
                                 "with `lastgood audit export`")


@audit.command("export")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.pass_context
def audit_export(ctx: click.Context, file: Path | None) -> None:
    """Write every event as JSON Lines to FILE (stdout when omitted)."""
    cli = get(ctx)
    lines = cli.services.audit.export_lines()
    if file is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    if not file.parent.exists():
        raise InvalidInput(f"folder {str(file.parent)!r} does not exist",
                           fix="create it or choose another file")
    tmp = file.with_name(file.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        count = 0
        for line in lines:
            out.write(line + "\n")
            count += 1
    tmp.replace(file)
    cli.err.print(f"wrote {count} events to {file}")
