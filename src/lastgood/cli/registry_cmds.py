"""`register`, `models`, `versions`, `show`, `events`, `retire`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from lastgood.cli.app import get, json_option
from lastgood.cli.files import read_document
from lastgood.cli.mlflow_cmds import (
    register_from_mlflow,
    registered,
    report_identical,
)
from lastgood.cli.render import events_table, models_table, show_version, versions_table
from lastgood.services.documents import (
    parse_golden,
    parse_metrics,
    parse_pairs,
    parse_requirements,
    parse_schema,
)
from lastgood.services.mlflow_uris import is_mlflow_uri
from lastgood.services.registry import RegisterRequest, artifact_files
from lastgood.services.views import event_view, model_view, version_view


@click.command()
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--flavor", help="sklearn, xgboost, lightgbm, onnx, python_function (alias mlflow: "
                                "served through mlflow) or pickle; detected when omitted.")
@click.option("--tag", help="A unique human tag such as v1.4.2.")
@click.option("--metric", "metrics", multiple=True, metavar="K=V", help="Offline metric.")
@click.option("--requires", multiple=True, metavar="PKG==VER",
              help="Runtime pin (captured from this environment when omitted).")
@click.option("--input-schema", type=click.Path(path_type=Path),
              help="JSON/YAML: {inputs: [{name, dtype}], outputs: [...]}, or an MLflow "
                   "signature.")
@click.option("--golden", type=click.Path(path_type=Path),
              help="JSON/YAML: [{input: {...}, output: ...}], or an MLflow input example "
                   "(outputs recorded, or given as \"predictions\").")
@click.option("--provenance", multiple=True, metavar="K=V", help="e.g. git_sha=abc123.")
@click.option("--label", "labels", multiple=True, help="Free tag (repeatable).")
@click.option("--allow-pickle", is_flag=True,
              help="Accept a pickle/joblib file (runs code on load; marked unsafe_format).")
@click.option("--sign-with", metavar="KEY",
              help="Sign the version digest with this signing key (`lastgood key create`).")
@json_option
@click.pass_context
def register(ctx: click.Context, name: str, path: Path, flavor: str | None, tag: str | None,
             metrics: tuple[str, ...], requires: tuple[str, ...], input_schema: Path | None,
             golden: Path | None, provenance: tuple[str, ...], labels: tuple[str, ...],
             allow_pickle: bool, sign_with: str | None, as_json: bool) -> None:
    """Register PATH (a model file, an MLflow model folder, or an MLflow URI: models:/M/3,
    models:/M@ALIAS, runs:/RUN_ID/PATH) as the next version of NAME."""
    cli = get(ctx)
    req = RegisterRequest(
        model=name, path=path, flavor=flavor, tag=tag, metrics=parse_metrics(metrics),
        requires=parse_requirements(requires),
        schema=parse_schema(read_document(input_schema, what="schema"), source=str(input_schema))
        if input_schema else None,
        golden=parse_golden(read_document(golden, what="golden"), source=str(golden))
        if golden else (),
        provenance=parse_pairs(provenance, flag="--provenance", example="git_sha=abc123"),
        labels=labels, allow_pickle=allow_pickle, sign_with=sign_with)
    if is_mlflow_uri(str(path)):
        register_from_mlflow(cli, req, str(path), as_json=as_json)
        return
    total = sum(p.stat().st_size for _, p in artifact_files(path))
    with Progress(TextColumn("hashing and storing"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=cli.err, transient=True,
                  disable=as_json or total < 8 * 1024 * 1024) as bar:
        task = bar.add_task("store", total=total)
        done, identical = registered(cli, req, progress=lambda n: bar.advance(task, n))
    if identical is not None or done is None:
        report_identical(cli, identical, as_json=as_json)
        return
    version = done.version
    if as_json:
        cli.emit_json({**version_view(version, full=False), "notes": list(done.notes)})
        return
    unsafe = " [red](unsafe format: runs code on load)[/]" if version.unsafe_format else ""
    cli.out.print(f"registered [bold]{version.ref}[/] ({version.flavor}) digest "
                  f"{version.digest[:12]}{unsafe}")
    for note in done.notes:
        cli.out.print(f"  note: {note}", markup=False, highlight=False)


@click.command()
@json_option
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List every model."""
    cli = get(ctx)
    found = cli.services.registry.models()
    if as_json:
        cli.emit_json([model_view(m) for m in found])
    elif not found:
        cli.out.print("no models yet — register one: lastgood register NAME PATH")
    else:
        cli.out.print(models_table(found))


TABLE_LIMIT = 50
"""Rows a `versions` table shows unless told otherwise; --json stays complete for scripts."""


@click.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1),
              help=f"Only the newest N (the table's default: {TABLE_LIMIT}).")
@click.option("--all", "show_all", is_flag=True, help="Every version in the table.")
@json_option
@click.pass_context
def versions(ctx: click.Context, name: str, limit: int | None, show_all: bool,
             as_json: bool) -> None:
    """List the versions of NAME, newest first."""
    cli = get(ctx)
    if as_json:
        found = cli.services.registry.versions(name, limit=limit)
        cli.emit_json([version_view(v, full=False) for v in found])
        return
    shown = None if show_all else (limit or TABLE_LIMIT)
    found = cli.services.registry.versions(name, limit=None if shown is None else shown + 1)
    cli.out.print(versions_table(name, found[:shown]))
    if shown is not None and len(found) > shown:
        cli.err.print(f"the newest {shown} shown; --limit N or --all for more")


@click.command()
@click.argument("name")
@click.argument("ref")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, ref: str, as_json: bool) -> None:
    """Show one version (REF is a number or a tag)."""
    cli = get(ctx)
    version = cli.services.registry.show(name, ref)
    if as_json:
        cli.emit_json(version_view(version))
    else:
        show_version(cli.out, version)


@click.command()
@click.option("--model", help="Only events of this model.")
@click.option("--env", help="Only events of this environment.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the last N.")
@json_option
@click.pass_context
def events(ctx: click.Context, model: str | None, env: str | None, limit: int | None,
           as_json: bool) -> None:
    """The audit trail: every mutation and refusal, oldest first."""
    cli = get(ctx)
    found = cli.services.registry.events(model=model, env=env)
    if limit is not None:
        found = found[-limit:]
    if as_json:
        cli.emit_json([event_view(e) for e in found])
    else:
        cli.out.print(events_table(found))


@click.command()
@click.argument("name")
@click.argument("ref")
@click.option("--reason", default="", help="Why it must never serve again (required).")
@json_option
@click.pass_context
def retire(ctx: click.Context, name: str, ref: str, reason: str, as_json: bool) -> None:
    """Retire a version: it stays in history but is never deployed or rolled back to."""
    cli = get(ctx)
    version = cli.services.registry.retire(name, ref, reason=reason, actor=cli.actor)
    if as_json:
        cli.emit_json(version_view(version, full=False))
    else:
        cli.out.print(f"retired {version.ref}")
