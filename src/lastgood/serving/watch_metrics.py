"""The watch's state as Prometheus series, on the /metrics of the replica it runs in
(`lastgood serve --watch`): what the acting watch judged last, and when it last looked.

    lastgood_watch_verdict{model,env,version,verdict}    1 for the verdict of the last look
    lastgood_watch_last_look_timestamp_seconds{env}      the last look this watch took acting

A watch that stands by (another holds the lease) exports no verdicts and no new look, so the
alert "no watch is acting" is `time() - max(lastgood_watch_last_look_timestamp_seconds)`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lastgood.domain.health import Verdict
from lastgood.ports import Clock
from lastgood.services.watch import Observation

JUDGED = (Verdict.HEALTHY, Verdict.INCONCLUSIVE, Verdict.DEGRADED, Verdict.FAILED)

FRESH = timedelta(seconds=30)
"""Verdicts older than this are not exported: the watch stopped acting, its view is stale."""


class WatchGauges(Collector):
    """Keeps the acting watch's last observations (its `on_tick`) and exports them."""

    def __init__(self, *, env: str, clock: Clock) -> None:
        self._env, self._clock = env, clock
        self._lock = threading.Lock()
        self._seen: tuple[Observation, ...] = ()
        self._looked: datetime | None = None

    def observed(self, seen: Sequence[Observation]) -> None:
        """One acting look's observations (called from the watch's thread)."""
        with self._lock:
            self._seen, self._looked = tuple(seen), self._clock.now()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            seen, looked = self._seen, self._looked
        verdicts = GaugeMetricFamily("lastgood_watch_verdict", "1 for the verdict of the "
                                     "acting watch's last look at each live deployment",
                                     labels=("model", "env", "version", "verdict"))
        last = GaugeMetricFamily("lastgood_watch_last_look_timestamp_seconds",
                                 "Unix time of the last look this watch took while acting",
                                 labels=("env",))
        if looked is not None:
            last.add_metric((self._env,), looked.timestamp())
            if self._clock.now() - looked <= FRESH:
                for obs in seen:
                    for verdict in JUDGED:
                        verdicts.add_metric((obs.model, obs.env, str(obs.version), str(verdict)),
                                            1.0 if obs.assessment.verdict is verdict else 0.0)
        yield verdicts
        yield last
