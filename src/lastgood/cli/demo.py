"""`lastgood demo`: the whole story on the embedded default, with models trained on the spot.

Three scikit-learn models are trained on the wine data set that ships inside scikit-learn, saved
with skops, registered with metrics, schema and golden examples; v1 and v2 are deployed and
verified, a degraded v3 is deployed, and lastgood rolls back to the last verified version.
The second act (`lastgood.bootstrap.demo`) serves the model with the watch inside, deploys a bad
v4 under load and lets the watch detect it, roll back and verify the rollback on its own.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from lastgood.cli.app import CliContext, get
from lastgood.cli.render import (
    candidates_table,
    checks_table,
    events_table,
    history_table,
    table,
)
from lastgood.cli.render import versions_table as versions_render
from lastgood.config import Settings
from lastgood.domain.errors import PreconditionFailed
from lastgood.services.faces import ControlPlane
from lastgood.services.registry import RegisterRequest

MODEL, ENV = "wine-quality", "production"


def register_all(cli: CliContext, services: ControlPlane, built: list[dict[str, Any]]) -> None:
    for item in built:
        services.registry.register(RegisterRequest(
            model=MODEL, path=item["path"], tag=item["tag"],
            metrics={"accuracy": round(item["accuracy"], 4)}, schema=item["schema"],
            golden=item["golden"], provenance={"dataset": "sklearn.datasets.load_wine",
                                               "trainer": "lastgood demo"}), actor=cli.actor)


def step(cli: CliContext, text: str) -> None:
    cli.out.rule(f"[bold]{text}")


@click.command()
@click.option("--home", type=click.Path(path_type=Path), default=None,
              help="Where the demo keeps its registry (default: $LASTGOOD_HOME/demo, wiped).")
@click.option("--watch/--no-watch", "with_watch", default=True, show_default=True,
              help="Also run the second act: a bad deploy under load, rolled back automatically.")
@click.option("--serve", "serve_after", is_flag=True,
              help="Then leave the control plane and its dashboard running (Ctrl-C stops it).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="With --serve: the dashboard's port on 127.0.0.1.")
@click.pass_context
def demo(ctx: click.Context, home: Path | None, with_watch: bool, serve_after: bool,
         port: int) -> None:
    """Train, register, deploy, verify, degrade and roll back — the whole loop in one go."""
    cli = get(ctx)
    home = (home or cli.settings.home / "demo").absolute()
    if home.exists():
        shutil.rmtree(home)
    settings = replace(cli.settings, home=home, db_url=f"sqlite:///{home / 'registry.db'}",
                       store_url=str(home / "artifacts"), remote_url="")  # always local
    from lastgood.bootstrap.demo_models import train
    from lastgood.bootstrap.services import open_control_plane

    services = open_control_plane(settings)
    cli.out.print(f"demo registry: {home}")
    step(cli, "1. Train three models on the wine data set and register them")
    with tempfile.TemporaryDirectory() as tmp:
        built = train(Path(tmp))
        register_all(cli, services, built)
    cli.out.print(versions_render(MODEL, services.registry.versions(MODEL)))
    deps = services.deployments
    step(cli, "2. Deploy v1 and verify it, deploy v2 and verify it")
    for number, item in ((1, built[0]), (2, built[1])):
        deps.deploy(MODEL, number, env=ENV, reason=f"release {item['tag']}", actor=cli.actor)
        deps.verify(MODEL, env=ENV, baseline={"accuracy": round(item["accuracy"], 4),
                                              "error_rate": 0.0},
                    reason="bake window passed", actor=cli.actor)
        cli.out.print(f"deployed and verified v{number} ({item['tag']}, "
                      f"accuracy {item['accuracy']:.3f})")
    step(cli, "3. Deploy v3 — trained on corrupted labels")
    deps.deploy(MODEL, 3, env=ENV, reason="release v3.0", actor=cli.actor)
    live_accuracy = built[2]["accuracy"]
    cli.out.print(f"v3 live accuracy {live_accuracy:.3f} against v2's verified baseline "
                  f"{built[1]['accuracy']:.3f}: [red]degraded[/]")
    step(cli, "4. Roll back: the plan (dry run), then the rollback")
    plan = deps.plan_rollback(MODEL, env=ENV)
    cli.out.print(candidates_table(plan.candidates, plan.target.version if plan.target else None))
    if plan.target is not None:
        cli.out.print(checks_table(plan.target))
    started = time.perf_counter()
    op = deps.rollback(MODEL, env=ENV, actor=cli.actor,
                       reason=f"accuracy fell to {live_accuracy:.3f}",
                       trigger={"accuracy": live_accuracy,
                                "baseline_accuracy": built[1]["accuracy"]})
    took = (time.perf_counter() - started) * 1000
    cli.out.print(f"[green]rolled back[/] v{op.from_version} → v{op.target_version} in "
                  f"{took:.0f} ms ({op.id}); v{op.from_version} quarantined")
    step(cli, "5. Evidence: history, forensic archive, audit trail")
    cli.out.print(history_table(MODEL, ENV, deps.history(MODEL, env=ENV)))
    if op.archive_id:
        record, members = services.archives.show(op.archive_id)
        cli.out.print(f"archive {record.id}: {record.size} bytes, sha256 {record.sha256[:16]}, "
                      f"members: {', '.join(sorted(members))}")
    cli.out.print(events_table(services.registry.events(model=MODEL)[-8:]))
    report = services.audit.verify()
    cli.out.print(f"audit chain: {'[green]intact[/]' if report.ok else '[red]BROKEN[/]'} "
                  f"({report.checked} events)")
    if with_watch:
        step(cli, "6. Automatic: a bad deploy under load, detected, rolled back and verified")
        second_act(cli, services, home, MODEL, ENV)
    cli.out.print(f"\nexplore: LASTGOOD_HOME={home} {invoked_as()} status {MODEL} --env {ENV}")
    if serve_after:
        serve_dashboard(cli, services, settings, port)


def invoked_as() -> str:
    """How to run this same lastgood again from here: `lastgood` only when that name on PATH
    is this program, else its path (`.venv/bin/lastgood` after the README's install)."""
    import os
    import shutil
    import sys

    program = os.path.abspath(sys.argv[0])
    if os.path.basename(program) == "__main__.py":  # python -m lastgood
        return f"{_short_path(sys.executable)} -m lastgood"
    found = shutil.which("lastgood")
    if found and os.path.realpath(found) == os.path.realpath(program):
        return "lastgood"
    return _short_path(program)


def _short_path(path: str) -> str:
    import os

    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def serve_dashboard(cli: CliContext, services: ControlPlane, settings: Settings,
                    port: int) -> None:
    """Leave the story on screen: the control plane, its dashboard and a serving replica."""
    from lastgood.bootstrap.processes import ServerOptions, run_server
    from lastgood.domain.access import Role

    issued = services.access.create_token("demo", role=Role.ADMIN, actor=cli.actor)
    step(cli, "The dashboard")

    def announce(url: str) -> None:
        cli.out.print(f"dashboard: [bold]{url}/[/]  (Ctrl-C stops it)")
        cli.out.print(f"sign in with this admin token: {issued.secret}")

    run_server(settings, ServerOptions(port=port, with_serving=ENV, serving_port=0,
                                                 announce=announce))


def second_act(cli: CliContext, plane: ControlPlane, home: Path, model: str, env: str) -> None:
    """Register v4.0 and run the automatic story, printing its timeline."""
    from lastgood.bootstrap.demo import run_auto_rollback
    from lastgood.bootstrap.demo_models import train_mislabelled
    from lastgood.bootstrap.services import local_services

    services = local_services(plane)
    if services is None:
        raise PreconditionFailed("the demo's second act serves models in this process",
                                 fix="unset LASTGOOD_URL")
    with tempfile.TemporaryDirectory() as tmp:
        item = train_mislabelled(Path(tmp))
        bad = services.registry.register(RegisterRequest(
            model=model, path=item["path"], tag=item["tag"],
            metrics={"accuracy": round(item["accuracy"], 4)}, schema=item["schema"],
            golden=item["golden"], provenance={"dataset": "sklearn.datasets.load_wine",
                                               "trainer": "lastgood demo (label bug)"}),
            actor=cli.actor)
    cli.out.print(f"registered v{bad.number} ({bad.tag}): trained after a label-mapping bug; "
                  "its golden examples are its own answers, so preflight cannot tell")
    timeline = run_auto_rollback(services, model=model, env=env, bad=bad.number, home=home,
                                 actor=cli.actor, say=cli.out.print)
    cli.out.print(table("Timeline of the automatic rollback", ["step", "at"],
                        timeline.rows()))
    cli.out.print(f"first evidence: {timeline.first or '—'}")
    cli.out.print(f"decision: {timeline.evidence}")
    cli.out.print(f"verification: {timeline.verification or timeline.outcome}")
    total = timeline.total_s
    cli.out.print(f"bad deploy to verified rollback: "
                  f"{'—' if total is None else f'{total:.1f} s'} (target <= 60 s)")
