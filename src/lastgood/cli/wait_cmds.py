"""`lastgood wait`: the watch's verdict on the live deployment, as an exit code, for CI.

    lastgood deploy fraud 7 --env production --reason "$CI_COMMIT_SHA"
    lastgood wait fraud --env production --timeout 900      # 0 verified, 9 regressed, 1 no verdict

It waits for what the watch (`lastgood watch` or `serve --watch`) decides about the deployment
that is live when it starts: verified after its bake window (exit 0); judged DEGRADED or FAILED,
or rolled back by the watch (exit 9, `Regressed`); no verdict within `--timeout` (exit 1).
"""

from __future__ import annotations

import time
from typing import Any

import click

from lastgood.cli.app import CliContext, get, json_option
from lastgood.domain.audit import Event
from lastgood.domain.deployments import Deployment
from lastgood.domain.errors import LastGoodError, PreconditionFailed, Regressed

REGRESSION = ("DEGRADED", "FAILED")


def _regression(events: list[Event], deployment_id: int) -> Event | None:
    """The first watch decision that judged `deployment_id` worse than its baseline."""
    for event in events:
        evidence, after = event.draft.evidence or {}, event.draft.after or {}
        if event.action == "watch.decision" and evidence.get("deployment_id") == deployment_id \
                and after.get("verdict") in REGRESSION:
            return event
    return None


def _ended(cli: CliContext, watched: Deployment) -> Deployment | None:
    """`watched` as history records it, once it is no longer live."""
    history = cli.services.deployments.history(watched.model, env=watched.env)
    return next((d for d in history if d.id == watched.id and d.ended_at is not None), None)


def _outcome(cli: CliContext, watched: Deployment) -> tuple[str, dict[str, Any]] | None:
    """("verified", view) when done well; raises Regressed when judged worse; else None."""
    live = cli.services.deployments.status(watched.model, env=watched.env).live
    if live is not None and live.id == watched.id and live.verified is not None:
        return "verified", {"verified_by": live.verified.approver,
                            "reason": live.verified.reason}
    judged = _regression(cli.services.registry.events(model=watched.model, env=watched.env),
                         watched.id)
    if judged is not None:
        raise Regressed(f"{watched.model} v{watched.version} in {watched.env}: "
                        f"{judged.draft.reason}", fix=f"see `lastgood events --model "
                        f"{watched.model} --env {watched.env}`; roll back with `lastgood "
                        f"rollback {watched.model} --env {watched.env} --reason … --yes`")
    ended = _ended(cli, watched) if live is None or live.id != watched.id else None
    if ended is not None:
        raise Regressed(f"{watched.model} v{watched.version} in {watched.env} is no longer "
                        f"live ({ended.end}: {ended.end_reason or 'no reason recorded'})",
                        fix=f"see `lastgood history {watched.model} --env {watched.env}`")
    return None


@click.command()
@click.argument("name")
@click.option("--env", "env_name", required=True)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=900.0,
              show_default=True, help="Seconds to wait for a verdict (the bake window and "
                                      "then some).")
@click.option("--interval", "interval_s", type=click.FloatRange(min=0.1), default=2.0,
              show_default=True, help="Seconds between looks at the registry.")
@json_option
@click.pass_context
def wait(ctx: click.Context, name: str, env_name: str, timeout_s: float, interval_s: float,
         as_json: bool) -> None:
    """Wait for the watch's verdict on the live deployment of NAME in ENV (for CI)."""
    cli = get(ctx)
    watched = cli.services.deployments.status(name, env=env_name).live
    if watched is None:
        raise PreconditionFailed(f"{name} has no live deployment in {env_name}",
                                 fix=f"deploy first: lastgood deploy {name} VERSION "
                                     f"--env {env_name} --reason …")
    deadline = time.monotonic() + timeout_s
    while (done := _outcome(cli, watched)) is None:
        if time.monotonic() >= deadline:
            raise LastGoodError(f"no verdict on {name} v{watched.version} in {env_name} "
                                f"within {timeout_s:.0f} s",
                                fix="is a watch running (`lastgood watch --env "
                                    f"{env_name}` or `serve --watch`)? wait longer with "
                                    "--timeout")
        time.sleep(interval_s)
    outcome, view = done
    if as_json:
        cli.emit_json({"model": name, "env": env_name, "version": watched.version,
                       "deployment_id": watched.id, "outcome": outcome, **view})
    else:
        cli.out.print(f"[green]{outcome}[/] {name} v{watched.version} in {env_name} "
                      f"by {view['verified_by']}")
