"""`lastgood serve`: the prediction server for every model deployed to an environment."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from lastgood.cli.app import get
from lastgood.cli.watch_cmds import local_services, serve_watch_options
from lastgood.domain.errors import InvalidInput, NotFound
from lastgood.domain.readiness_evidence import readiness_interval_problem
from lastgood.domain.replay import reservoir_size_problem, window_problem
from lastgood.serving.evidence import EvidenceOptions
from lastgood.serving.gateway import GatewayOptions
from lastgood.serving.reservoir import ReservoirOptions
from lastgood.serving.server import ServingOptions
from lastgood.serving.slots import StandbyLimits
from lastgood.serving.standby_prover import ReadinessOptions


@click.command("serve")
@click.option("--env", "env_name", required=True, help="The environment whose models to serve.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes sharing the port; each is a replica that follows the registry.")
@click.option("--standby", type=click.IntRange(0, 16), default=1, show_default=True,
              help="Verified versions kept loaded and warm besides the live one.")
@click.option("--standby-memory-mb", type=click.IntRange(min=1), default=None,
              help="Cap on the memory the standby versions may take.")
@click.option("--readiness-interval", type=float, default=None,
              help="Seconds between re-proofs of each warm standby (default 60, or "
                   "LASTGOOD_READINESS_INTERVAL_S).")
@click.option("--replay-reservoir", type=int, default=1000, show_default=True,
              help="Recent live requests kept per model (in memory) and replayed on every warm "
                   "standby; 0 turns the reservoir and the replay off.")
@click.option("--replay-window", type=float, default=3600.0, show_default=True,
              help="Seconds of recent traffic the reservoir samples uniformly.")
@click.option("--replay-archive", default="on", show_default=True, metavar="on|off",
              help="on: a deploy refused on today's traffic keeps the requests it failed on in "
                   "its forensic archive (the only way raw requests leave the replica); off: "
                   "they never leave it.")
@click.option("--max-body-kb", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Larger prediction requests are refused with 413.")
@click.option("--sample-rate", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Share of successful requests kept as evidence (errors are always kept).")
@click.option("--default-model", default=None,
              help="The model `/invocations` serves (needed when ENV serves several).")
@click.option("--watch", "with_watch", is_flag=True,
              help="Also run the watch in this process, on its own counters (one worker).")
@click.option("--policy", "policy_file", type=click.Path(path_type=Path), default=None,
              help="With --watch: the health policy file (default: lastgood's).")
@click.option("--webhook", default=None,
              help="With --watch: POST decisions here (default LASTGOOD_WEBHOOK_URL).")
@click.option("--engine", type=click.Choice(["process", "ray"]), default="process",
              show_default=True, help="process: lastgood's own workers; ray: a Ray Serve "
                                      "application whose every replica is a lastgood replica.")
@click.option("--replicas", default=None, metavar="N|MIN-MAX",
              help="With --engine ray: the number of Ray replicas (default 1), or MIN-MAX "
                   "for Ray's autoscaling between them.")
@click.option("--ray-address", default=None,
              help="With --engine ray: the cluster (head's host:port, or auto); default: "
                   "a local Ray instance for this command.")
@click.pass_context
def serve_command(ctx: click.Context, env_name: str, host: str, port: int, workers: int,
                  standby: int, standby_memory_mb: int | None, max_body_kb: int,
                  sample_rate: float, default_model: str | None, with_watch: bool,
                  policy_file: Path | None, webhook: str | None,
                  readiness_interval: float | None, replay_reservoir: int,
                  replay_window: float, replay_archive: str, engine: str,
                  replicas: str | None, ray_address: str | None) -> None:
    """Serve ENV: hot switches to warm standbys, replicas that follow the registry."""
    _check_engine(engine, workers=workers, replicas=replicas, ray_address=ray_address,
                  with_watch=with_watch)
    scale = parse_replicas(replicas) if replicas is not None else (1, 1)
    cli = get(ctx)
    settings = cli.settings
    interval = _readiness_interval(readiness_interval, settings.readiness_interval_s)
    reservoir = replace(_reservoir(replay_reservoir, replay_window, max_body_kb * 1024),
                        archive=_replay_archive(replay_archive))
    if settings.remote_url:
        raise InvalidInput("lastgood serve follows the registry database itself, not the API",
                           fix="unset LASTGOOD_URL and set LASTGOOD_DB_URL on the serving host")
    services = cli.services
    names = [e.name for e in services.deployments.environments()]
    if env_name not in names:
        raise NotFound(f"unknown environment {env_name!r}",
                       fix=f"known: {', '.join(names) or 'none'}; deploy a model there first")
    if default_model is not None:
        known = [m.name for m in services.registry.models()]
        if default_model not in known:
            raise NotFound(f"--default-model {default_model!r} is not a registered model",
                           fix=f"known: {', '.join(known) or 'none'}")
    base = ServingOptions()
    options = replace(
        base,
        reconciler=replace(base.reconciler, standby=StandbyLimits(
            count=standby, memory_bytes=standby_memory_mb * 2**20 if standby_memory_mb
            else None), readiness=ReadinessOptions(interval_s=interval)),
        gateway=replace(GatewayOptions(), max_body_bytes=max_body_kb * 1024,
                        default_model=default_model),
        evidence=replace(EvidenceOptions(), sample_rate=sample_rate,
                         accuracy_output=settings.accuracy_output), reservoir=reservoir)
    watch = serve_watch_options(cli, env_name, workers=workers, policy_file=policy_file,
                                webhook=webhook) if with_watch else None
    if engine == "ray":
        workers = scale[1]  # the engine says where it serves once its replicas are warm
    else:
        cli.err.print(f"serving {env_name} on http://{host}:{port} with {workers} worker(s)")
    if reservoir.off:
        cli.err.print("replay is off (--replay-reservoir 0): no recent requests are kept, the "
                      "standbys are not replayed, and rollbacks and deploys to this env are not "
                      "checked against today's traffic")
    # the root adds the registry, store, change signal, clock and LASTGOOD_SERVE_TOKEN's guard
    from lastgood.bootstrap.serving import ServeRequest, serve

    serve(settings, local_services(cli), ServeRequest(
        env=env_name, host=host, port=port, workers=workers, options=options, watch=watch,
        engine=engine, ray_address=ray_address, min_replicas=scale[0]))


def parse_replicas(text: str) -> tuple[int, int]:
    """`N` or `MIN-MAX` (1..1024) as (min, max); one line naming the fix otherwise."""
    low, sep, high = text.partition("-")
    try:
        least, most = int(low), int(high if sep else low)
    except ValueError:
        least = most = 0
    if not 1 <= least <= most <= 1024:
        raise InvalidInput(f"--replicas {text!r} is not N or MIN-MAX",
                           fix="pass a count such as 4, or a range such as 1-8 (1 to 1024)")
    return least, most


def _check_engine(engine: str, *, workers: int, replicas: str | None, ray_address: str | None,
                  with_watch: bool) -> None:
    """Options of one engine given to the other are refused, naming the right one."""
    if engine != "ray":
        given = "--replicas" if replicas is not None else "--ray-address" if ray_address \
            else None
        if given:
            raise InvalidInput(f"{given} is for --engine ray",
                               fix="add --engine ray, or use --workers N for lastgood's "
                                   "own processes")
        return
    if workers != 1:
        raise InvalidInput("--workers is for --engine process",
                           fix="use --replicas N with --engine ray")
    if with_watch:
        raise InvalidInput("--watch runs inside one process, not inside Ray replicas",
                           fix="run `lastgood watch --env ENV` beside it: it finds the Ray "
                               "replicas through the registry")


def _readiness_interval(given: float | None, configured: float) -> float:
    """The interval from --readiness-interval, else the setting; refused when unusable."""
    interval = configured if given is None else given
    problem = readiness_interval_problem(interval)
    if problem is not None:
        raise InvalidInput(f"readiness interval {problem}",
                           fix="pass --readiness-interval SECONDS (e.g. 60) or set "
                               "LASTGOOD_READINESS_INTERVAL_S, between 1 and 86400")
    return interval


def _replay_archive(value: str) -> bool:
    """--replay-archive on|off; refused in one line otherwise."""
    if value not in ("on", "off"):
        raise InvalidInput(f"--replay-archive {value!r} is neither on nor off",
                           fix="pass --replay-archive off to keep every raw request in the "
                               "replica, or on (the default)")
    return value == "on"


def _reservoir(size: int, window_s: float, body_limit: int) -> ReservoirOptions:
    """The reservoir from --replay-reservoir and --replay-window; refused when unusable."""
    problem = reservoir_size_problem(size)
    if problem is not None:
        raise InvalidInput(f"--replay-reservoir {problem}",
                           fix="pass a number of requests such as 1000, or 0 to turn replay off")
    problem = window_problem(window_s)
    if problem is not None:
        raise InvalidInput(f"--replay-window {problem}",
                           fix="pass the seconds of recent traffic to sample, e.g. 3600")
    # One request may be kept up to the body limit, but never more than 64 KiB: a reservoir
    # of 1,000 large bodies would be a memory leak in disguise.
    return ReservoirOptions(size=size, window_s=window_s,
                            max_request_bytes=min(body_limit, 65_536))
