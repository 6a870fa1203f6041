"""`lastgood watch` and `lastgood policy check`, and the watch run inside a serving process.

    lastgood watch --env production                        # the replicas at LASTGOOD_GATEWAY_URLS
    lastgood watch --env production --source prometheus --prometheus-url http://127.0.0.1:9090
    lastgood watch --env production --once --json          # one pass, for scripts and cron
    lastgood policy check policies.yaml                    # refused with file:line and the fix

The composition root builds the watch, its metric source and notifiers (the CLI's `World`); with
`lastgood serve --watch` it runs in a thread of the serving process and reads its counters.

    lastgood serve --env production --watch --policy policies.yaml
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from lastgood.cli.app import CliContext, get, json_option
from lastgood.cli.render import table
from lastgood.domain.errors import InvalidInput, PreconditionFailed
from lastgood.domain.health import HealthPolicy
from lastgood.domain.watching import assessment_view, decision_view
from lastgood.services.container import Services
from lastgood.services.policies import PolicyBook
from lastgood.services.watch import DEFAULT_INTERVAL_S, Observation
from lastgood.services.watch_lease import WatchLease
from lastgood.services.watch_setup import WatchOptions


def local_services(cli: CliContext) -> Services:
    """The services over the local registry; the watch does not run through a remote one."""
    from lastgood.bootstrap.services import local_services as local_of

    found = local_of(cli.services)
    if found is None:
        raise PreconditionFailed("lastgood watch runs next to the registry, not through "
                                 "LASTGOOD_URL", fix="unset LASTGOOD_URL and set LASTGOOD_DB_URL "
                                 "to the registry's database")
    return found


def serve_watch_options(cli: CliContext, env: str, *, workers: int, policy_file: Path | None,
                        webhook: str | None) -> WatchOptions:
    """For `lastgood serve --watch`: the watch the replica runs inside it.

    The policy file is checked now, before anything is served. One worker only: each worker's
    counters hold only its share of the traffic behind one shared URL. Several replicas each
    with `--watch`: one watch acts (the lease), reading every replica; the others stand by.
    """
    if workers != 1:
        raise InvalidInput("--watch runs in a single serving process",
                           fix="serve with --workers 1, or run `lastgood watch --env "
                               f"{env} --gateway URL` beside the workers")
    local_services(cli)
    if policy_file is not None:
        from lastgood.bootstrap.watch import policies

        policies(policy_file, kind="gateway")
    options = WatchOptions(env=env, policy_file=policy_file,
                           webhook_url=webhook or cli.settings.webhook_url,
                           webhook_secret=cli.settings.webhook_secret)
    log_to_stderr()
    return options


def log_to_stderr() -> None:
    """Decisions as log lines on stderr (the LogNotifier's channel)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("lastgood.watch", "lastgood.notify", "lastgood.metrics"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            logger.addHandler(handler)


def observation_view(obs: Observation) -> dict[str, Any]:
    return {"model": obs.model, "env": obs.env, "version": obs.version,
            "deployment_id": obs.deployment_id, "baseline_from": obs.baseline_from,
            "action": obs.action, **decision_view(obs.decision),
            "assessment": assessment_view(obs.assessment)}


def observations_table(seen: Sequence[Observation]) -> Any:
    return table("Watch", ["model", "version", "verdict", "decision", "action", "why"],
                 [(o.model, f"v{o.version}", o.assessment.verdict, o.decision.kind,
                   o.action or "—", o.assessment.reason[:160]) for o in seen])


@click.command()
@click.option("--env", required=True, help="The environment whose live deployments to watch.")
@click.option("--policy", "policy_file", type=click.Path(path_type=Path), default=None,
              help="A YAML/TOML policy file (default: lastgood's 'errors first' policy).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=DEFAULT_INTERVAL_S,
              show_default=True,
              help="Seconds between looks (a fifth of it, at least 0.1 s, while the evidence "
                   "leans toward a regression).")
@click.option("--once", is_flag=True, help="Look once, print what was seen and done, exit.")
@click.option("--source", "kind", type=click.Choice(["gateway", "prometheus"]), default=None,
              help="Where metrics come from (default: gateway, or prometheus when only "
                   "LASTGOOD_PROMETHEUS_URL is set).")
@click.option("--gateway", "gateways", multiple=True,
              help="A serving replica's URL (repeatable; default LASTGOOD_GATEWAY_URLS, else "
                   "every replica reporting to the registry).")
@click.option("--prometheus-url", default=None, help="Prometheus (default "
              "LASTGOOD_PROMETHEUS_URL).")
@click.option("--webhook", default=None, help="POST every decision here, signed with "
              "LASTGOOD_WEBHOOK_SECRET (default LASTGOOD_WEBHOOK_URL).")
@click.option("--verify-wait", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Longest wait for live data when verifying a rollback.")
@click.option("--sync-mlflow", "sync_mlflow_s", type=click.FloatRange(min=1), metavar="SECONDS",
              help="Also import from MLflow, follow its aliases and mirror to it every SECONDS "
                   "(MLFLOW_TRACKING_URI).")
@json_option
@click.pass_context
def watch(ctx: click.Context, env: str, policy_file: Path | None, interval: float, once: bool,
          kind: str | None, gateways: tuple[str, ...], prometheus_url: str | None,
          webhook: str | None, verify_wait: float, sync_mlflow_s: float | None,
          as_json: bool) -> None:
    """Judge every live deployment of ENV continuously: verify, roll back, or page a human."""
    cli = get(ctx)
    services = local_services(cli)
    from lastgood.services.mlflow_loop import keep_running

    keep_running(services, every_s=None if once else sync_mlflow_s, actor=cli.actor)
    from lastgood.bootstrap.watch import MetricRequest, build_watch, metric_source

    source = metric_source(cli.settings, services, MetricRequest(
        kind=kind, gateways=gateways, prometheus_url=prometheus_url))
    options = WatchOptions(env=env, policy_file=policy_file, interval_s=interval,
                           webhook_url=webhook or cli.settings.webhook_url,
                           webhook_secret=cli.settings.webhook_secret,
                           verify_wait_s=verify_wait)
    built = build_watch(services, source, options)
    log_to_stderr()
    try:
        if once:
            seen = built.watch.tick(env)
            if as_json:
                cli.emit_json([observation_view(o) for o in seen])
            else:
                cli.out.print(observations_table(seen))
            return
        cli.err.print(f"watching {env} every {interval:g} s on {source.describe()} "
                      "(Ctrl-C stops)")
        lease = WatchLease(uow=services.ports.uow, clock=services.ports.clock, env=env,
                           processes=services.ports.engine_settings.processes)
        built.watch.run(env, stop=threading.Event(), on_tick=_printer(cli), lease=lease)
    finally:
        built.close()


def _printer(cli: CliContext) -> Callable[[list[Observation]], None]:
    last: dict[int, tuple[str, str]] = {}

    def show(seen: list[Observation]) -> None:
        for obs in seen:
            key = (str(obs.assessment.verdict), obs.action)
            if last.get(obs.deployment_id) != key:
                last[obs.deployment_id] = key
                action = f" -> {obs.action}" if obs.action else ""
                cli.out.print(f"{obs.model} v{obs.version}: {obs.assessment.verdict}{action}: "
                              f"{obs.assessment.reason[:200]}")

    return show


@click.group()
def policy() -> None:
    """Health policies: signals, tolerated regression, bake window, mode."""


@policy.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--source", "kind", type=click.Choice(["gateway", "prometheus"]),
              default="gateway", show_default=True,
              help="The source the policies will be read with (it decides which signals exist).")
@json_option
@click.pass_context
def policy_check(ctx: click.Context, path: Path, kind: str, as_json: bool) -> None:
    """Load PATH as `lastgood watch` would; a mistake is refused with its line and fix."""
    from lastgood.bootstrap.watch import policies as read_policies

    cli = get(ctx)
    policies = read_policies(path, kind=kind)
    if as_json:
        cli.emit_json([policy_view(p) for p in policies])
        return
    for p in policies:
        cli.out.print(f"[bold]{p.model}/{p.env}[/]: mode {p.mode}, bake "
                      f"{p.bake_window.total_seconds():g} s, cooldown "
                      f"{p.cooldown.total_seconds():g} s, alpha {p.alpha:g}, max staleness "
                      f"{p.max_staleness.total_seconds():g} s")
        cli.out.print(_signals_table(p))
    cli.out.print(f"[green]ok[/]: {len(policies)} policies in {path}")


@policy.command("show")
@click.argument("model")
@click.option("--env", required=True)
@click.option("--policy", "policy_file", type=click.Path(path_type=Path), default=None,
              help="The policy file the watch is given (default: none).")
@click.option("--source", "kind", type=click.Choice(["gateway", "prometheus"]),
              default="gateway", show_default=True)
@json_option
@click.pass_context
def policy_show(ctx: click.Context, model: str, env: str, policy_file: Path | None, kind: str,
                as_json: bool) -> None:
    """The policy the watch applies to MODEL in ENV: the file's, or lastgood's default."""
    from lastgood.bootstrap.watch import policies, signals_of

    cli = get(ctx)
    available = signals_of(kind)
    found = [p for p in (policies(policy_file, kind=kind)
                         if policy_file else ()) if p.env == env]
    book = PolicyBook(found, available=available)
    chosen = book.policy(model, env)
    if as_json:
        cli.emit_json({**policy_view(chosen), "from_file": book.from_file(model, env)})
        return
    origin = str(policy_file) if book.from_file(model, env) else "lastgood's default"
    cli.out.print(f"[bold]{model}/{env}[/] ({origin}): mode {chosen.mode}, bake "
                  f"{chosen.bake_window.total_seconds():g} s, cooldown "
                  f"{chosen.cooldown.total_seconds():g} s, alpha {chosen.alpha:g}")
    cli.out.print(_signals_table(chosen))


def _signals_table(p: HealthPolicy) -> Any:
    return table("", ["signal", "relative", "absolute", "min samples", "limit", "worse when",
                      "alpha share"],
                 [(s.name, f"{s.relative:g}", f"{s.absolute:g}", s.min_samples, s.limit,
                   "higher" if s.higher_is_worse else "lower", f"{p.alpha_for(s):.4g}")
                  for s in p.signals])


def policy_view(p: HealthPolicy) -> dict[str, Any]:
    return {"model": p.model, "env": p.env, "mode": str(p.mode),
            "bake_window_s": p.bake_window.total_seconds(),
            "cooldown_s": p.cooldown.total_seconds(), "alpha": p.alpha,
            "max_staleness_s": p.max_staleness.total_seconds(),
            "signals": [{"name": s.name, "relative": s.relative, "absolute": s.absolute,
                         "min_samples": s.min_samples, "limit": s.limit,
                         "higher_is_worse": s.higher_is_worse, "weight": s.weight,
                         "alpha": p.alpha_for(s)} for s in p.signals]}
