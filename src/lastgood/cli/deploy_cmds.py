"""`env`, `deploy`, `verify`, `rollback`, `resume`, `status`, `history`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from lastgood.cli.app import CliContext, get, json_option
from lastgood.cli.errors import ABORTED, EXIT_CODES
from lastgood.cli.files import read_document
from lastgood.cli.mirror_status import mirror_line, mirror_view, status_mirror
from lastgood.cli.render import (
    ago,
    candidates_table,
    checks_table,
    history_table,
    table,
    when,
)
from lastgood.domain.deployments import (
    CustomCheck,
    Liveness,
    MlflowMode,
    ReplicaReport,
    RuntimeDrift,
    SwitchMode,
)
from lastgood.domain.errors import NoEligibleTarget, PlanChanged
from lastgood.domain.operations import Candidate, Operation, Phase
from lastgood.domain.replay import ReplayOutcome
from lastgood.services.deployments import RollbackPlan, Status, require_reason
from lastgood.services.documents import parse_env_columns, parse_metrics, parse_pairs
from lastgood.services.views import (
    deployment_view,
    environment_view,
    operation_view,
    plan_view,
    status_view,
)


@click.group()
def env() -> None:
    """Environments and their settings (feature schema, checks, switch mode)."""


@env.command("list")
@json_option
@click.pass_context
def env_list(ctx: click.Context, as_json: bool) -> None:
    """List environments."""
    cli = get(ctx)
    found = cli.services.deployments.environments()
    if as_json:
        cli.emit_json([environment_view(e) for e in found])
        return
    cli.out.print(table("Environments", ["name", "switch", "drift policy", "checks",
                                         "signatures"],
                        [(e.name, e.switch_mode, e.runtime_drift, len(e.checks),
                          "required" if e.require_signature else "—") for e in found]))


@env.command("show")
@click.argument("name")
@json_option
@click.pass_context
def env_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one environment's settings."""
    cli = get(ctx)
    view = environment_view(cli.services.deployments.environment(name))
    if as_json:
        cli.emit_json(view)
    else:
        for key, value in view.items():
            cli.out.print(f"[bold]{key}[/]: {value}")


@env.command("set")
@click.argument("name")
@click.option("--feature-schema", type=click.Path(path_type=Path),
              help="JSON/YAML list of the columns the env provides today (or an MLflow "
                   "signature).")
@click.option("--expected-outputs", type=click.Path(path_type=Path),
              help="JSON/YAML list of output columns consumers expect.")
@click.option("--runtime-drift", type=click.Choice([d.value for d in RuntimeDrift]))
@click.option("--switch-mode", type=click.Choice([m.value for m in SwitchMode]))
@click.option("--deploy-command", help="Run for each switch in 'command' mode; exit 0 = done.")
@click.option("--check", "checks", multiple=True, metavar="NAME=COMMAND",
              help="A custom preflight gate (a shell command; or NAME=module:function).")
@click.option("--switch-timeout", type=click.FloatRange(min=0.1), help="Seconds.")
@click.option("--require-signature/--no-require-signature", default=None,
              help="Only versions signed by a trusted key may be deployed or rolled back to.")
@click.option("--trusted-key", "trusted_keys", multiple=True, metavar="NAME",
              help="A signing key this env trusts (repeatable; replaces the list).")
@click.option("--mlflow-alias", help="The MLflow alias this env stands for (default: its name).")
@click.option("--mlflow-mode", type=click.Choice([m.value for m in MlflowMode]),
              help="off; mirror (point the alias at what is live, with tags); follow (mirror, "
                   "and a moved alias is a deploy request).")
@json_option
@click.pass_context
def env_set(ctx: click.Context, name: str, feature_schema: Path | None,
            expected_outputs: Path | None, runtime_drift: str | None, switch_mode: str | None,
            deploy_command: str | None, checks: tuple[str, ...], switch_timeout: float | None,
            require_signature: bool | None, trusted_keys: tuple[str, ...],
            mlflow_alias: str | None, mlflow_mode: str | None, as_json: bool) -> None:
    """Create or change an environment."""
    cli = get(ctx)
    changes: dict[str, Any] = {}
    for key, path in (("feature_schema", feature_schema), ("expected_outputs", expected_outputs)):
        if path is not None:
            changes[key] = parse_env_columns(read_document(path, what="schema"),
                                             source=str(path), key=key)
    for key, value in (("runtime_drift", runtime_drift), ("switch_mode", switch_mode),
                       ("deploy_command", deploy_command), ("switch_timeout_s", switch_timeout),
                       ("require_signature", require_signature),
                       ("mlflow_alias", mlflow_alias), ("mlflow_mode", mlflow_mode)):
        if value is not None:
            changes[key] = value
    if trusted_keys:
        changes["trusted_keys"] = tuple(trusted_keys)
    if checks:
        changes["checks"] = tuple(_custom_check(k, v) for k, v in parse_pairs(
            checks, flag="--check", example="'schema-diff=./check.sh'").items())
    result = cli.services.deployments.configure(name, changes=changes, actor=cli.actor)
    if as_json:
        cli.emit_json(environment_view(result))
    else:
        cli.out.print(f"environment [bold]{name}[/] saved")


def _custom_check(name: str, value: str) -> CustomCheck:
    is_entry = ":" in value and " " not in value and "/" not in value
    return CustomCheck(name=name, command="" if is_entry else value,
                       entry_point=value if is_entry else "")


def _phase_printer(cli: CliContext, quiet: bool) -> Any:
    def show(op: Operation) -> None:
        if not quiet and cli.err.is_terminal:
            cli.err.print(f"  [dim]{op.id}[/] → {op.phase}")
    return show


@click.command()
@click.argument("name")
@click.argument("ref")
@click.option("--env", "env_name", required=True, help="Environment, e.g. production.")
@click.option("--reason", default="", help="Why (goes into the audit trail; required).")
@click.option("--force", is_flag=True,
              help="Deploy anyway: a quarantined or retired version, or one whose replay of "
                   "today's traffic fails or agrees too little (each override is named).")
@click.option("--dry-run", is_flag=True,
              help="Load it on every replica, replay today's traffic, run every check; move "
                   "no traffic.")
@json_option
@click.pass_context
def deploy(ctx: click.Context, name: str, ref: str, env_name: str, reason: str, force: bool,
           dry_run: bool, as_json: bool) -> None:
    """Make ENV serve version REF of NAME: every replica loads it as a shadow standby and
    replays today's traffic on it, the preflight checks pass, then traffic moves."""
    cli = get(ctx)
    op = cli.services.deployments.deploy(name, ref, env=env_name, reason=reason,
                                         actor=cli.actor, force=force, dry_run=dry_run,
                                         on_phase=_phase_printer(cli, as_json))
    if as_json:
        cli.emit_json(operation_view(op))
        return
    if dry_run:
        _print_deploy_checks(cli.out, op)
        verdict = "would deploy" if op.phase is Phase.CHECKED and not op.error else "would refuse"
        cli.out.print(f"dry run: {verdict} {name} v{op.target_version} to {env_name}; "
                      f"nothing moved ({op.id})")
        return
    _print_replay_lines(cli.out, op.candidates)
    cli.out.print(f"[green]deployed[/] {name} v{op.target_version} to {env_name} "
                  f"({op.id}, {op.phase})")


def _print_deploy_checks(out: Console, op: Operation) -> None:
    for cand in op.candidates:
        if cand.checks:
            out.print(checks_table(cand))
        for refusal in cand.refusals:
            out.print(f"[red]refused[/]: {escape(refusal)}", soft_wrap=True)
    _print_replay_lines(out, op.candidates)


def _print_replay_lines(out: Console, candidates: Sequence[Candidate]) -> None:
    """Each candidate's replay on today's traffic, one line each ("overridden by --force: …"
    when the deploy was forced past it)."""
    for cand in candidates:
        for result in (r for r in cand.checks if r.name == "replay"):
            out.print(f"replay v{cand.version}: {escape(result.summary)}", soft_wrap=True)


@click.command()
@click.argument("name")
@click.option("--env", "env_name", required=True)
@click.option("--metric", "metrics", multiple=True, metavar="K=V",
              help="Measured baseline (at least one): error_rate, accuracy, latency_p50_ms, "
                   "latency_p90_ms, latency_p95_ms, latency_p99_ms, custom.<metric>; e.g. "
                   "latency_p95_ms=41 error_rate=0.002.")
@click.option("--reason", default="", help="Who checked what (required).")
@json_option
@click.pass_context
def verify(ctx: click.Context, name: str, env_name: str, metrics: tuple[str, ...], reason: str,
           as_json: bool) -> None:
    """Mark the live deployment verified, with its measured baseline."""
    cli = get(ctx)
    dep = cli.services.deployments.verify(name, env=env_name, baseline=parse_metrics(metrics),
                                          reason=reason, actor=cli.actor)
    if as_json:
        cli.emit_json(deployment_view(dep))
    else:
        cli.out.print(f"[green]verified[/] {name} v{dep.version} in {env_name}: it is now a "
                      "rollback target")


@click.command()
@click.argument("name")
@click.option("--env", "env_name", required=True)
@click.option("--reason", default="", help="What went wrong (required).")
@click.option("--to", "to", help="A specific version or tag instead of the automatic choice.")
@click.option("--force", is_flag=True, help="With --to: accept a version never verified here.")
@click.option("--dry-run", is_flag=True, help="Print the plan and every check; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--cause", type=click.Choice(["model", "infra", "unknown"]), default="model",
              show_default=True,
              help="Whose fault: only model quarantines the replaced version.")
@json_option
@click.pass_context
def rollback(ctx: click.Context, name: str, env_name: str, reason: str, to: str | None,
             force: bool, dry_run: bool, yes: bool, cause: str, as_json: bool) -> None:
    """Put back the most recent verified version of NAME in ENV."""
    cli = get(ctx)
    deps = cli.services.deployments
    plan: RollbackPlan | None = None
    if dry_run or not (yes or as_json):
        if not dry_run:
            require_reason(reason, "rollback")  # before the checks run, not after the "yes"
        plan = deps.plan_rollback(name, env=env_name, to=to, force=force, actor=cli.actor)
        if dry_run:
            _print_plan(cli, plan, as_json)
            return
        _print_plan(cli, plan, False)
        if plan.target is None:
            ctx.exit(EXIT_CODES[NoEligibleTarget])
        if not _confirm(plan):
            cli.err.print("aborted: nothing changed")
            ctx.exit(ABORTED)
    try:
        op = deps.rollback(name, env=env_name, reason=reason, actor=cli.actor, to=to,
                           force=force, on_phase=_phase_printer(cli, as_json), cause=cause,
                           plan=plan)
    except PlanChanged as exc:
        cli.err.print(f"error: {escape(exc.one_line())}")
        _print_plan(cli, deps.plan_rollback(name, env=env_name, to=to, force=force,
                                            actor=cli.actor), False)
        ctx.exit(EXIT_CODES[PlanChanged])
    if as_json:
        cli.emit_json(operation_view(op))
        return
    cli.out.print(f"[green]rolled back[/] {name} in {env_name}: v{op.from_version} → "
                  f"v{op.target_version} ({op.id})")
    kept = "quarantined" if op.cause.quarantines else f"kept as a target (cause {op.cause})"
    cli.out.print(f"replaced v{op.from_version} {kept}; forensic bundle {op.archive_id}")
    if op.lost_replicas:
        cli.out.print(f"[yellow]lost during the switch[/]: {', '.join(op.lost_replicas)} "
                      "stopped reporting (see `lastgood status`)")
    if op.resumed:
        cli.out.print(f"finished first (interrupted earlier): {', '.join(op.resumed)}")


def _confirm(plan: RollbackPlan) -> bool:
    assert plan.target is not None
    named = f" ({plan.id})" if plan.id else ""
    return click.confirm(f"Roll {plan.model} in {plan.env} back from v{plan.live} to "
                         f"v{plan.target.version}{named}?", default=False)


def _print_plan(cli: CliContext, plan: RollbackPlan, as_json: bool) -> None:
    target = plan.target.version if plan.target else None
    if as_json:
        cli.emit_json(plan_view(plan))
        return
    out: Console = cli.out
    out.print(f"live: v{plan.live}   target: "
              + (f"[bold green]v{target}[/]" if target else "[red]none eligible[/]"))
    out.print(candidates_table(plan.candidates, target))
    if plan.target is not None:
        out.print(checks_table(plan.target))
    _print_replay(out, plan)


def _print_replay(out: Console, plan: RollbackPlan) -> None:
    """Each judged candidate's replay on today's traffic, one unwrapped line each."""
    for cand in plan.candidates:
        for result in (r for r in cand.checks if r.name == "replay"):
            out.print(f"replay v{cand.version}: {escape(result.summary)}", soft_wrap=True)


@click.command()
@click.option("--model", help="Only this model's operations.")
@click.option("--env", "env_name", help="Only this environment's operations.")
@json_option
@click.pass_context
def resume(ctx: click.Context, model: str | None, env_name: str | None, as_json: bool) -> None:
    """Finish deploys and rollbacks that a crash interrupted."""
    cli = get(ctx)
    done = cli.services.deployments.resume(model=model, env=env_name)
    if as_json:
        cli.emit_json([operation_view(o) for o in done])
    elif not done:
        cli.out.print("nothing to resume")
    else:
        for op in done:
            cli.out.print(f"{op.id} {op.kind} {op.model}/{op.env}: {op.phase}"
                          + (f" ({op.error})" if op.error else ""))


@click.command()
@click.argument("name")
@click.option("--env", "env_name", required=True)
@click.option("--at", "at", metavar="TIME", help="What was live at TIME (ISO 8601), and the "
                                                 "last verified version then.")
@json_option
@click.pass_context
def status(ctx: click.Context, name: str, env_name: str, at: str | None, as_json: bool) -> None:
    """Desired against actual: what ENV should serve and what each replica serves."""
    cli = get(ctx)
    if at is not None:
        from lastgood.cli import mlflow_cmds

        mlflow_cmds.status_at(cli, name, env_name, at, as_json=as_json)
        return
    st = cli.services.deployments.status(name, env=env_name)
    mirror = status_mirror(cli, name, env_name)
    if as_json:
        view = status_view(st)
        if mirror is not None:
            view["mlflow"] = mirror_view(mirror)
        cli.emit_json(view)
        return
    _print_status(cli.out, st)
    if mirror is not None:
        cli.out.print(mirror_line(mirror))


REPLAY_STYLE = {ReplayOutcome.PASSED: "green", ReplayOutcome.FAILED: "red",
                ReplayOutcome.NO_DATA: "yellow", ReplayOutcome.OFF: "dim"}


def _print_status(out: Console, st: Status) -> None:
    if st.live is None or st.live_version is None:
        out.print(f"{st.model} is not deployed in {st.env}")
        return
    verified = "[green]verified[/]" if st.live.verified else "[yellow]not verified[/]"
    out.print(f"[bold]{st.model}[/] in [bold]{st.env}[/]: desired v{st.live.version} "
              f"({st.live_version.tag or 'untagged'}, {st.live_version.status}), {verified}, "
              f"since {when(st.live.started_at, relative=True)} by {st.live.deployed_by}")
    out.print(f"rollback targets (verified, newest first): "
              f"{', '.join(f'v{n}' for n in st.standby) or 'none'}")
    if st.readiness is not None:
        style = "green" if st.readiness.ready else "red"
        out.print(f"[{style}]{escape(st.readiness.headline())}[/]")
    if st.replay is not None:
        out.print(f"[{REPLAY_STYLE[st.replay.outcome]}]replay: {escape(st.replay.summary)}[/]")
    if st.replicas:
        out.print(table("Replicas (actual)", ["replica", "serves", "state", "since", "seen"],
                        [(r.replica_id, r.version, _replica_state(st, r), when(r.since),
                          ago(r.seen_at) if r.seen_at else "—") for r in st.replicas]))
    else:
        out.print("replicas: none reporting")
    for op in st.unfinished:
        out.print(f"[yellow]unfinished[/] {op.id} {op.kind} in phase {op.phase} — "
                  "run `lastgood resume`")


def _replica_state(st: Status, report: ReplicaReport) -> str:
    """Its reported state while live; else stale or gone, and since when it said nothing."""
    seen = st.liveness(report)
    if seen is Liveness.LIVE:
        return report.state
    silent = (st.at - report.seen_at).total_seconds() if st.at else 0.0
    return f"{seen} since {when(report.seen_at)} ({silent:.0f} s)"


@click.command()
@click.argument("name")
@click.option("--env", "env_name", required=True)
@click.option("--at", "at", metavar="TIME", help="Only what had started by TIME (ISO 8601).")
@json_option
@click.pass_context
def history(ctx: click.Context, name: str, env_name: str, at: str | None,
            as_json: bool) -> None:
    """Which version was live when, who deployed it, why, and how it ended."""
    cli = get(ctx)
    if at is not None:
        from lastgood.cli import mlflow_cmds

        mlflow_cmds.history_at(cli, name, env_name, at, as_json=as_json)
        return
    found = cli.services.deployments.history(name, env=env_name)
    if as_json:
        cli.emit_json([deployment_view(d) for d in found])
    else:
        cli.out.print(history_table(name, env_name, found))


@click.command("ops")
@click.option("--model", help="Only this model's operations.")
@click.option("--env", "env_name", help="Only this environment's operations.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
@click.pass_context
def ops(ctx: click.Context, model: str | None, env_name: str | None, limit: int,
        as_json: bool) -> None:
    """Deploys and rollbacks, newest first, with their phase."""
    cli = get(ctx)
    found = cli.services.deployments.operations(model=model, env=env_name, limit=limit)
    if as_json:
        cli.emit_json([operation_view(o) for o in found])
        return
    cli.out.print(table("Operations", ["id", "kind", "model/env", "from", "to", "phase", "by",
                                       "updated", "error"],
                        [(o.id, o.kind, f"{o.model}/{o.env}", o.from_version, o.target_version,
                          o.phase, o.actor, when(o.updated_at), o.error[:40]) for o in found]))
