"""Which replicas the gateway source reads: a fixed list (`--gateway`), or every replica the
registry says serves the environment now (each replica's report carries the URL it answers on).

Reports older than `stale_after_s` (a replica killed without a word) and replicas that said they
stopped are dropped; a replica that reports later is picked up at the next look. A replica whose
URL does not answer is left out of that look with the reason, INCONCLUSIVE for itself only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

import httpx

from lastgood.adapters.metrics.gateway import GatewaySource, HttpStats, StatsReader
from lastgood.domain.deployments import ReplicaReport, ReplicaState
from lastgood.domain.errors import LastGoodError
from lastgood.ports import Clock, UnitOfWorkFactory

log = logging.getLogger("lastgood.metrics")

DEFAULT_STALE_AFTER_S = 15.0
"""Three missed heartbeats of a replica (it reports every 5 s): then it is taken for gone."""


class RegistryReplicas:
    """Every replica whose fresh report says it serves the model in the environment."""

    def __init__(self, uow: UnitOfWorkFactory, *, clock: Clock,
                 stale_after_s: float = DEFAULT_STALE_AFTER_S, timeout_s: float = 3.0,
                 own: tuple[str, StatsReader] | None = None,
                 client_factory: Callable[[], httpx.Client] | None = None) -> None:
        self._uow, self._clock, self._stale = uow, clock, timedelta(seconds=stale_after_s)
        self._timeout, self._own, self._client_factory = timeout_s, own, client_factory
        self._http: dict[str, HttpStats] = {}

    def readers(self, model: str, env: str) -> tuple[list[StatsReader], str]:
        try:
            with self._uow() as uow:
                reports = uow.replicas.list(model=model, env=env)
        except LastGoodError as exc:
            return [], f"the registry's replica reports cannot be read: {exc.one_line()}"
        urls = self.urls(reports)
        if not urls:
            return [], (f"no replica of {model} in {env} has reported a URL in the last "
                        f"{self._stale.total_seconds():g} s: start `lastgood serve --env {env}`, "
                        "or pass --gateway URL")
        return [self._reader(url) for url in urls], ""

    def urls(self, reports: Sequence[ReplicaReport]) -> list[str]:
        """The URLs of the fresh, serving replicas among `reports`, each once, in order."""
        now = self._clock.now()
        fresh = [r for r in reports if r.url and r.state != ReplicaState.STOPPED
                 and now - r.seen_at <= self._stale]
        return sorted({r.url for r in fresh})

    def _reader(self, url: str) -> StatsReader:
        if self._own is not None and url == self._own[0]:
            return self._own[1]  # this process: its counters without a round trip
        if url not in self._http:
            client = self._client_factory() if self._client_factory else None
            self._http[url] = HttpStats(url, timeout_s=self._timeout, client=client)
        return self._http[url]

    def describe(self) -> str:
        return "the replicas reporting to the registry"

    def close(self) -> None:
        for reader in self._http.values():
            reader.close()


def registry_source(uow: UnitOfWorkFactory, *, clock: Clock,
                    own: tuple[str, StatsReader] | None = None,
                    stale_after_s: float = DEFAULT_STALE_AFTER_S) -> GatewaySource:
    """Every replica the registry says serves the env now; `own` is this process's replica
    (its URL and in-process reader), read without a round trip."""
    return GatewaySource(RegistryReplicas(uow, clock=clock, own=own,
                                          stale_after_s=stale_after_s), clock=clock)
