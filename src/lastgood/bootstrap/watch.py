"""The watch's wiring: metric sources, policy files, notifiers, and the live verifier wired
into the rollback engine (`lastgood watch`), or the watch in a thread of a serving replica
(`lastgood serve --watch`, the demo), reading that replica's own counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from lastgood.adapters.files.policy_file import load_policies
from lastgood.adapters.metrics import (
    in_process_source,
    open_metric_source,
    registry_source,
    signals_of,
)
from lastgood.adapters.metrics.gateway import InProcessStats
from lastgood.adapters.notify import FanOut, LogNotifier, WebhookNotifier
from lastgood.config import Settings
from lastgood.domain.health import HealthPolicy
from lastgood.ports import MetricSource, Notifier
from lastgood.services.container import Services, wire
from lastgood.services.live_verifier import LiveVerifier, VerifierSettings
from lastgood.services.policies import PolicyBook
from lastgood.services.watch import WatchService, WatchSettings
from lastgood.services.watch_lease import WatchLease
from lastgood.services.watch_setup import BuiltWatch, WatchOptions
from lastgood.serving.watch_metrics import WatchGauges

__all__ = ["MetricRequest", "attach_watch", "build_watch", "metric_source", "policies",
           "policies_for", "replicas_source", "signals_of"]


@dataclass(frozen=True, slots=True)
class MetricRequest:
    """Where `lastgood watch` reads metrics: a kind of source and its URLs (empty: settings)."""

    kind: str | None = None
    gateways: tuple[str, ...] = ()
    prometheus_url: str | None = None


def policies(path: Path, *, kind: str) -> tuple[HealthPolicy, ...]:
    """The policy file at `path`, checked against what a `kind` of source provides."""
    return load_policies(path, available_signals=signals_of(kind))


def policies_for(path: Path | None, source: MetricSource, env: str) -> list[HealthPolicy]:
    """The file's policies of `env` (checked against what the source provides)."""
    if path is None:
        return []
    return [p for p in load_policies(path, available_signals=source.signals()) if p.env == env]


def metric_source(settings: Settings, services: Services, request: MetricRequest) -> MetricSource:
    """`lastgood watch`'s source: the one asked for, else gateway (prometheus when only
    LASTGOOD_PROMETHEUS_URL is set); without gateway URLs, every replica in the registry."""
    url = request.prometheus_url or settings.prometheus_url
    chosen = request.kind or ("prometheus" if url and not (request.gateways
                                                           or settings.gateway_urls)
                              else "gateway")
    ports = services.ports
    return open_metric_source(chosen, clock=ports.clock,
                              gateway_urls=request.gateways or settings.gateway_urls,
                              prometheus_url=url, registry=ports.uow)


def build_watch(services: Services, source: MetricSource, options: WatchOptions) -> BuiltWatch:
    """The watch over `source`, with the live verifier wired into the rollback engine."""
    ports = services.ports
    book = PolicyBook(policies_for(options.policy_file, source, options.env),
                      available=source.signals())
    verifier = LiveVerifier(uow=ports.uow, source=source, clock=ports.clock, policies=book,
                            settings=VerifierSettings(wait_s=options.verify_wait_s))
    verified = wire(replace(ports, verifier=verifier))
    notifiers: list[Notifier] = [LogNotifier()]
    closers: list[Callable[[], None]] = []
    if options.webhook_url:
        hook = WebhookNotifier(options.webhook_url, secret=options.webhook_secret)
        notifiers.append(hook)
        closers.append(hook.close)
    notifier = FanOut(notifiers)
    watch = WatchService(uow=ports.uow, deployments=verified.deployments, source=source,
                         notifier=notifier, clock=ports.clock, policies=book,
                         settings=WatchSettings(interval_s=options.interval_s))
    closer = getattr(source, "close", None)
    if callable(closer):
        closers.append(closer)
    return BuiltWatch(watch, verified, notifier, tuple(closers))


def attach_watch(app: Starlette, services: Services, options: WatchOptions, *,
                 on_built: Callable[[BuiltWatch], None] | None = None) -> Starlette:
    """Run the watch in a thread of this serving process, on its own counters."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[Any]:
        async with inner(a) as state:
            source = replicas_source(a, services)
            built = build_watch(services, source, options)
            if on_built is not None:
                on_built(built)
            stop = threading.Event()
            lease = WatchLease(uow=services.ports.uow, clock=services.ports.clock,
                               env=options.env, processes=services.ports.engine_settings.processes)
            gauges = WatchGauges(env=options.env, clock=services.ports.clock)
            a.state.serving.recorder.registry.register(gauges)  # on this replica's /metrics
            thread = threading.Thread(target=built.watch.run, args=(options.env,),
                                      kwargs={"stop": stop, "lease": lease,
                                              "on_tick": gauges.observed}, daemon=True,
                                      name="lastgood-watch")
            thread.start()
            try:
                yield state
            finally:
                stop.set()
                await asyncio.to_thread(thread.join, 60)
                built.close()

    app.router.lifespan_context = lifespan
    return app


def replicas_source(app: Starlette, services: Services) -> MetricSource:
    """For `serve --watch`: every replica of the env in the registry, this one in-process."""
    clock, url = services.ports.clock, getattr(app.state.reconciler, "url", "")
    loop = asyncio.get_running_loop()
    if not url:
        return in_process_source(app.state.serving, clock=clock, loop=loop)
    own = InProcessStats(app.state.serving, loop=loop, name=url)
    return registry_source(services.ports.uow, clock=clock, own=(url, own))
