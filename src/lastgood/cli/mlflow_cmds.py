"""`register NAME models:/…`, `sync mlflow`, and the MLflow lines of `status`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from lastgood.cli.app import CliContext, get, json_option
from lastgood.cli.errors import FAILURE
from lastgood.cli.mirror_status import mirror_line, mirror_view
from lastgood.cli.render import history_table
from lastgood.domain.deployments import live_at, verified_by
from lastgood.domain.errors import IdenticalContent, InvalidInput, LastGoodError
from lastgood.domain.versions import Version
from lastgood.services.mlflow_loop import one_round
from lastgood.services.mlflow_sync import MlflowSync, SyncStep
from lastgood.services.registry import RegisterRequest, Registration
from lastgood.services.views import deployment_view, version_view


def _local(cli: CliContext) -> Any:
    services = cli.services
    if not hasattr(services, "mlflow_sync"):
        raise InvalidInput("the MLflow integration runs next to the registry, not through "
                           "LASTGOOD_URL", fix="run this command where the registry is "
                                               "(unset LASTGOOD_URL)")
    return services


def register_from_mlflow(cli: CliContext, req: RegisterRequest, uri: str, *,
                         as_json: bool) -> None:
    """`lastgood register NAME models:/m/3`: download through MLflow, then register."""
    sync: MlflowSync = _local(cli).mlflow_sync
    done = sync.import_uri(req, uri, actor=cli.actor)
    v = done.version
    if as_json:
        cli.emit_json(version_view(v, full=False) | {
            "registered": done.created, "identical_to": done.identical_to,
            "mlflow": {"model": done.outside.model, "version": done.outside.version,
                       "run_id": done.outside.run_id, "url": done.outside.url}})
        return
    source = (f"MLflow {done.outside.model} v{done.outside.version}" if done.outside.version
              else f"MLflow run {done.outside.run_id}")
    if not done.created:
        cli.out.print(f"identical to [bold]{v.ref}[/] (digest {v.digest[:12]}): nothing new "
                      f"registered from {source}")
        return
    twin = f" — identical content to v{done.identical_to}" if done.identical_to else ""
    cli.out.print(f"registered [bold]{v.ref}[/] from {source}, digest {v.digest[:12]}, "
                  f"{len(v.metrics)} metrics{twin}")


@click.group()
def sync() -> None:
    """Import versions from an outside registry."""


@sync.command("mlflow")
@click.option("--model", "models", multiple=True,
              help="Only this MLflow model (repeatable; default: every registered model).")
@click.option("--allow-pickle", is_flag=True,
              help="Accept pickled models and python_function flavors (runs code on load).")
@click.option("--every", type=click.FloatRange(min=0.5), default=None, metavar="SECONDS",
              help="Keep running: sync, mirror and follow aliases every SECONDS.")
@click.option("--ticks", type=click.IntRange(min=1), default=None, hidden=True,
              help="With --every: stop after N rounds (for tests).")
@json_option
@click.pass_context
def sync_mlflow(ctx: click.Context, models: tuple[str, ...], allow_pickle: bool,
                every: float | None, ticks: int | None, as_json: bool) -> None:
    """Import every MLflow version not imported yet (idempotent), then mirror the aliases."""
    cli = get(ctx)
    services = _local(cli)
    rounds = 0
    report = None
    while True:
        try:
            report = _one_round(cli, services, models, allow_pickle=allow_pickle,
                                as_json=as_json)
        except LastGoodError as exc:
            if every is None:
                raise
            cli.err.print(f"MLflow sync skipped this round: {exc.one_line()}")
        rounds += 1
        if every is None or (ticks is not None and rounds >= ticks):
            break
        time.sleep(every)
    if report is not None and (report.failed or report.skipped) and every is None:
        ctx.exit(FAILURE)


def _one_round(cli: CliContext, services: Any, models: tuple[str, ...], *, allow_pickle: bool,
               as_json: bool) -> Any:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=cli.err, transient=True, disable=as_json) as bar:
        task = bar.add_task("importing from MLflow", total=None)

        def step(s: SyncStep) -> None:
            bar.update(task, advance=1, description=f"{s.model} v{s.outside_version}")
            if s.outcome == "failed":
                cli.err.print(f"[red]MLflow {s.model} v{s.outside_version}[/]: {s.detail}")

        done = one_round(services.mlflow_sync, services.mlflow_follow, services.mlflow_mirror,
                         actor=cli.actor, models=models, allow_pickle=allow_pickle,
                         on_pending=lambda n: bar.update(task, total=n), on_step=step)
    report, followed, states = done.sync, done.followed, done.mirror
    for line in report.skipped:
        cli.err.print(f"[yellow]{escape(line)}[/]", highlight=False)
    if as_json:
        cli.emit_json({"seen": report.seen, "imported": report.imported,
                       "identical": report.present,
                       "failed": [{"model": s.model, "version": s.outside_version,
                                   "error": s.detail} for s in report.failed],
                       "skipped": list(report.skipped),
                       "mirror": [mirror_view(s) for s in states],
                       "followed": [dict(f) for f in followed]})
    else:
        cli.out.print(f"MLflow sync: {report.imported} imported, {report.present} identical to "
                      f"an existing version, {len(report.failed)} failed "
                      f"({report.seen} new in MLflow)")
        for s in states:
            cli.out.print(mirror_line(s))
    return report


def registered(cli: CliContext, req: RegisterRequest, progress: Callable[[int], None]
               ) -> tuple[Registration | None, Version | None]:
    """(the registration, None), or (None, the existing version with identical content)."""
    try:
        return cli.services.registry.register_noted(req, actor=cli.actor,
                                                    progress=progress), None
    except IdenticalContent as exc:
        return None, cli.services.registry.show(req.model, exc.version)


def report_identical(cli: CliContext, v: Version | None, *, as_json: bool) -> None:
    assert v is not None
    if as_json:
        cli.emit_json(version_view(v, full=False) | {"registered": False,
                                                      "identical_to": v.number})
    else:
        cli.out.print(f"identical to [bold]{v.ref}[/] (digest {v.digest[:12]}): nothing new "
                      "registered")


def parse_at(text: str) -> datetime:
    """`--at` as ISO 8601 (`2026-05-01T12:00Z`, `2026-05-01 12:00`); no zone means UTC."""
    try:
        found = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"--at {text!r} is not a time",
                           fix="use ISO 8601, e.g. --at 2026-05-01T12:00:00Z") from exc
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def status_at(cli: CliContext, model: str, env: str, text: str, *, as_json: bool) -> None:
    """`status --at`: what was live then and what the last verified version was, from
    lastgood's own history (MLflow keeps none)."""
    at = parse_at(text)
    history = cli.services.deployments.history(model, env=env)
    live, verified = live_at(history, at), verified_by(history, at)
    if as_json:
        cli.emit_json({"model": model, "env": env, "at": at.isoformat(),
                       "live": deployment_view(live) if live else None,
                       "last_verified": deployment_view(verified) if verified else None})
        return
    if live is None:
        cli.out.print(f"{model} was not deployed in {env} at {at.isoformat()}")
    else:
        state = "verified" if live.verified and live.verified.at <= at else "not verified"
        cli.out.print(f"[bold]{model}[/] in [bold]{env}[/] at {at.isoformat()}: v{live.version} "
                      f"({state} then), live since {live.started_at.isoformat()} by "
                      f"{live.deployed_by}: {live.reason}")
    cli.out.print("last verified then: " + (f"v{verified.version}" if verified else "none"))


def history_at(cli: CliContext, model: str, env: str, text: str, *, as_json: bool) -> None:
    """`history --at`: the deployments that had started by then, newest first."""
    at = parse_at(text)
    found = [d for d in cli.services.deployments.history(model, env=env) if d.started_at <= at]
    if as_json:
        cli.emit_json([deployment_view(d) | {"live_then": d is live_at(found, at)}
                       for d in found])
    else:
        cli.out.print(history_table(model, env, found))
