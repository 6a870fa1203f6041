"""`quarantine list` and `quarantine lift`: the quarantine's lifecycle."""

from __future__ import annotations

import click

from lastgood.cli.app import get, json_option
from lastgood.cli.render import table, when
from lastgood.services.views import quarantine_view, version_view


@click.group()
def quarantine() -> None:
    """Quarantined versions: list them, or lift a quarantine that was not the version's fault."""


@quarantine.command("list")
@click.option("--model", help="Only this model's quarantined versions.")
@json_option
@click.pass_context
def list_quarantined(ctx: click.Context, model: str | None, as_json: bool) -> None:
    """Every quarantined version, with the rollback that quarantined it and why."""
    cli = get(ctx)
    found = cli.services.quarantine.list(model=model)
    if as_json:
        cli.emit_json([quarantine_view(q) for q in found])
    elif not found:
        cli.out.print("no quarantined versions")
    else:
        cli.out.print(table("Quarantined versions", ["model", "version", "tag", "since", "cause",
                                                     "operation", "reason"],
                            [(q.version.model, q.version.number, q.version.tag or "",
                              when(q.since) if q.since else "", q.cause, q.operation,
                              q.reason[:60]) for q in found]))


@quarantine.command("lift")
@click.argument("name")
@click.argument("ref", metavar="VERSION|TAG")
@click.option("--reason", default="", help="Why the version was not at fault (required).")
@json_option
@click.pass_context
def lift(ctx: click.Context, name: str, ref: str, reason: str, as_json: bool) -> None:
    """Make a quarantined version active again: a rollback target where it was verified."""
    cli = get(ctx)
    version = cli.services.quarantine.lift(name, ref, reason=reason, actor=cli.actor)
    if as_json:
        cli.emit_json(version_view(version, full=False))
    else:
        cli.out.print(f"[green]quarantine lifted[/]: {version.ref} is {version.status} "
                      "again (a rollback target where it was verified)")
