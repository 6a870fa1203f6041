"""The gateway source: a lastgood serving process's own counters, read in-process or over HTTP.

Each replica answers `GET /v1/models/{name}/stats` with cumulative counters per version (requests,
errors, feedback, predicted classes, latency and value bins, custom metric moments from feedback,
and when counting started). A window
since a time is cut from those cumulative numbers: exactly, when counting started after it (a
version switched to after `since`, or a replica started after it); else by subtracting the
latest reading this source took at or before `since` (it reads every version of the model at
each call, so a standby version restored by a rollback has a reading from before the switch);
else from the oldest reading it has, and the window says it starts there. A replica whose
counters went down restarted: its window restarts too. Replicas are summed; one that cannot be
read is left out (logged); when none can be read, the window carries the reason and is
INCONCLUSIVE.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import reduce
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from lastgood.domain.baselines import regressed, samples_of, summary_minus, summary_plus
from lastgood.domain.errors import InvalidInput, LastGoodError, NotFound, TransientError
from lastgood.domain.health import REPLICA_PREFIX
from lastgood.domain.measurements import (
    CATEGORIES,
    CATEGORY_BOUNDS,
    Histogram,
    LiveWindow,
    Moments,
    RateCounts,
    Summary,
    category_bin,
)
from lastgood.ports import Clock

log = logging.getLogger("lastgood.metrics")

GATEWAY_SIGNALS = frozenset({"error_rate", "latency", "accuracy", "drift", "custom"})
""""latency" stands for every latency quantile, "custom" for every custom.<metric> (feedback)."""

Key = tuple[str, str, int]  # (replica, model, version)


class StatsReader(Protocol):
    """Something that returns a replica's `/v1/models/{name}/stats` document."""

    @property
    def name(self) -> str: ...

    def read(self, model: str) -> Mapping[str, Any]:
        """The document; raises a LastGoodError (NotFound, TransientError) when it cannot."""
        ...


class StatsProvider(Protocol):
    """The serving state of a replica in this process (`ServingState.live_stats`)."""

    def live_stats(self, model: str) -> dict[str, Any]: ...


class HttpStats:
    """Reads one replica over HTTP."""

    def __init__(self, base_url: str, *, client: httpx.Client | None = None,
                 timeout_s: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout_s)

    @property
    def name(self) -> str:
        return self.base_url

    def read(self, model: str) -> Mapping[str, Any]:
        url = f"{self.base_url}/v1/models/{quote(model, safe='')}/stats"
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            raise TransientError(f"cannot reach {url}: {type(exc).__name__}: {exc}",
                                 fix="start `lastgood serve` there or fix --gateway") from exc
        if response.status_code == 404:
            raise NotFound(f"{self.base_url} does not serve {model!r}",
                           fix="deploy it, or point --gateway at the replicas that serve it")
        if not response.is_success:
            raise TransientError(f"{url} answered HTTP {response.status_code}",
                                 fix="check the replica's log")
        try:
            doc = response.json()
        except ValueError as exc:
            raise InvalidInput(f"{url} did not answer JSON: {response.text[:80]!r}",
                               fix="point --gateway at a lastgood serve replica") from exc
        if not isinstance(doc, Mapping):
            raise InvalidInput(f"{url} answered {type(doc).__name__}, not a JSON object",
                               fix="point --gateway at a lastgood serve replica")
        return doc

    def close(self) -> None:
        self._client.close()


class InProcessStats:
    """Reads the serving state of this process, on its event loop (its only writer)."""

    def __init__(self, provider: StatsProvider, *, loop: asyncio.AbstractEventLoop | None = None,
                 name: str = "in-process", timeout_s: float = 3.0) -> None:
        self._provider, self._loop, self._name, self._timeout = provider, loop, name, timeout_s

    @property
    def name(self) -> str:
        return self._name

    def read(self, model: str) -> Mapping[str, Any]:
        if self._loop is None:
            return self._provider.live_stats(model)

        async def on_loop() -> dict[str, Any]:
            return self._provider.live_stats(model)

        future = asyncio.run_coroutine_threadsafe(on_loop(), self._loop)
        try:
            return future.result(self._timeout)
        except TimeoutError as exc:
            future.cancel()
            raise TransientError(f"the serving loop did not answer within {self._timeout} s",
                                 fix="the replica is overloaded; the watch retries") from exc


def zero_summary() -> Summary:
    """Counters of a version that served nothing yet."""
    return Summary(errors=RateCounts(0, 0), accuracy=RateCounts(0, 0))


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"the stats answer is garbage: {what} is {value!r}, not a whole "
                           "number", fix="check the replica (is it a lastgood serve?)")
    return value


def _histogram(doc: Any, what: str) -> Histogram | None:
    if doc is None:
        return None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("bounds"), list) \
            or not isinstance(doc.get("counts"), list):
        raise InvalidInput(f"{what} is not {{bounds, counts}}", fix="check the replica")
    bounds = tuple(float(b) for b in doc["bounds"] if isinstance(b, int | float))
    return Histogram(bounds, tuple(_count(c, what) for c in doc["counts"]))


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise InvalidInput(f"the stats answer is garbage: {what} is {value!r}, not a finite "
                           "number", fix="check the replica (is it a lastgood serve?)")
    return float(value)


def _custom(doc: Any) -> dict[str, Moments]:
    """`{name: {count, mean, m2}}`, the moments of each custom metric."""
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise InvalidInput("custom is not an object of {count, mean, m2}", fix="check the replica")
    found = {}
    for name, moments in doc.items():
        if not isinstance(moments, Mapping):
            raise InvalidInput(f"custom[{name!r}] is not {{count, mean, m2}}",
                               fix="check the replica")
        found[str(name)] = Moments(_count(moments.get("count"), f"custom[{name!r}].count"),
                                   _number(moments.get("mean"), f"custom[{name!r}].mean"),
                                   _number(moments.get("m2"), f"custom[{name!r}].m2"))
    return found


def _predictions(entry: Mapping[str, Any]) -> Histogram | None:
    values = _histogram(entry.get("value_histogram"), "value_histogram")
    if values is not None and values.total > 0:
        return values
    classes = entry.get("predictions")
    if not isinstance(classes, Mapping):
        return None
    counts = [0] * (CATEGORIES + 1)
    for label, count in classes.items():
        counts[category_bin(str(label))] += _count(count, f"predictions[{label!r}]")
    return Histogram(CATEGORY_BOUNDS, tuple(counts))


def version_summary(entry: Mapping[str, Any]) -> tuple[Summary, datetime | None]:
    """One version's cumulative counters and when counting started."""
    feedback = entry.get("feedback") or {}
    if not isinstance(feedback, Mapping):
        raise InvalidInput("feedback is not an object", fix="check the replica")
    since = entry.get("counting_since")
    started = datetime.fromisoformat(since) if isinstance(since, str) else None
    errors, requests = _count(entry.get("errors"), "errors"), _count(entry.get("requests"),
                                                                      "requests")
    reproduced = _reproduced(entry)
    # The input's errors (reproduced on the way back) are not the version's: they leave the
    # error rate, as a rejected request never enters it. So do those still waiting for their
    # replay, while the way back has reproduced every failure replayed so far; once it answered
    # one, the version is failing on its own and waiting ones count at once (a genuine
    # regression is not detected later). Each count only moves a failure from one side to the
    # other, and the switch happens once, so the rate stays cumulative.
    pending = _count(entry.get("errors_pending", 0), "errors_pending")
    input_only = reproduced is None or reproduced.events == reproduced.trials
    apart = min((pending if input_only else 0) + (reproduced.events if reproduced else 0),
                errors)
    summary = Summary(
        errors=RateCounts(errors - apart, max(requests - apart, 0)),
        reproduced=reproduced,
        latency=_histogram(entry.get("latency_histogram"), "latency_histogram"),
        accuracy=RateCounts(_count(feedback.get("correct", 0), "feedback.correct"),
                            _count(feedback.get("total", 0), "feedback.total")),
        predictions=_predictions(entry),
        custom=_custom(entry.get("custom")))
    return summary, started


def _reproduced(entry: Mapping[str, Any]) -> RateCounts | None:
    """Errors replayed on the way back and reproduced there; None from a replica that does not
    replay (an older lastgood)."""
    if "errors_replayed" not in entry:
        return None
    return RateCounts(_count(entry.get("errors_input", 0), "errors_input"),
                      _count(entry["errors_replayed"], "errors_replayed"))


def parse_stats(doc: Mapping[str, Any], *, env: str) -> dict[int, tuple[Summary, datetime | None]]:
    """Every version's counters in a stats document; InvalidInput for garbage."""
    if doc.get("env") not in (None, env):
        raise InvalidInput(f"the replica serves env {doc.get('env')!r}, not {env!r}",
                           fix="point the watch at the replicas of this environment")
    versions = doc.get("versions")
    if not isinstance(versions, list):
        raise InvalidInput("the stats document has no list of versions",
                           fix="point the source at a lastgood serve replica")
    found = {}
    try:
        for entry in versions:
            found[_count(entry["version"], "version")] = version_summary(entry)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"the stats document is garbage ({type(exc).__name__}: {exc})",
                           fix="check the replica") from exc
    return found


@runtime_checkable
class Replicas(Protocol):
    """Which replicas to read: a fixed list, or the registry's (`discovery.RegistryReplicas`)."""

    def readers(self, model: str, env: str) -> tuple[list[StatsReader], str]:
        """The readers of the replicas to read now, and why there are none ("" when some)."""
        ...

    def describe(self) -> str:
        """The replicas in a few words, for people."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...


class FixedReplicas:
    """The replicas given by URL (`--gateway`, LASTGOOD_GATEWAY_URLS), or in this process."""

    def __init__(self, readers: Sequence[StatsReader]) -> None:
        self._readers = list(readers)

    def readers(self, model: str, env: str) -> tuple[list[StatsReader], str]:
        return list(self._readers), "" if self._readers else "no replica configured"

    def describe(self) -> str:
        return ", ".join(r.name for r in self._readers)

    def close(self) -> None:
        for reader in self._readers:
            closer = getattr(reader, "close", None)
            if callable(closer):
                closer()


class GatewaySource:
    """A MetricSource over one or more replicas' stats (see the module doc)."""

    def __init__(self, replicas: Replicas | Sequence[StatsReader], *, clock: Clock,
                 keep: int = 2000):
        self._replicas = replicas if isinstance(replicas, Replicas) else FixedReplicas(replicas)
        self._clock, self._keep = clock, keep
        self._marks: dict[Key, list[tuple[datetime, Summary]]] = {}

    def signals(self) -> frozenset[str]:
        return GATEWAY_SIGNALS

    def describe(self) -> str:
        return "gateway " + self._replicas.describe()

    def close(self) -> None:
        """Close the readers' connections."""
        self._replicas.close()

    def window(self, model: str, env: str, version: int, *, since: datetime) -> LiveWindow:
        now = self._clock.now()
        readers, none_why = self._replicas.readers(model, env)
        parts: list[tuple[datetime, Summary]] = []
        failed: list[tuple[str, str]] = []
        for reader in readers:
            try:
                found = parse_stats(reader.read(model), env=env)
            except LastGoodError as exc:
                failed.append((reader.name, exc.message))
                continue
            parts.append(self._cut(reader.name, model, version, found, since=since, at=now))
        if not parts:
            why = "; ".join(f"{name}: {message}" for name, message in failed) or none_why
            return LiveWindow(Summary(), since, now, {"*": why})
        if failed:
            log.warning("left out of the window of %s v%s: %s", model, version,
                        "; ".join(f"{name}: {message}" for name, message in failed))
        summary = reduce(summary_plus, (p[1] for p in parts))
        return LiveWindow(summary, max(p[0] for p in parts), now, left_out(failed))

    def _cut(self, replica: str, model: str, version: int,
             found: Mapping[int, tuple[Summary, datetime | None]], *, since: datetime,
             at: datetime) -> tuple[datetime, Summary]:
        for number, (summary, counted_from) in found.items():
            self._mark((replica, model, number), at, summary, counted_from=counted_from)
        current, counting_since = found.get(version, (zero_summary(), None))
        if version not in found:
            self._mark((replica, model, version), at, current)
        exact = counting_since >= since if counting_since else samples_of(current) == 0
        if exact:
            return since, current  # every count happened after `since`
        marks = self._marks[(replica, model, version)]
        before = [m for m in marks if m[0] <= since]
        base = before[-1] if before else marks[0]
        if base[0] == counting_since:  # no reading since: all the replica has, said so
            return base[0], summary_minus(current, base[1])
        return max(base[0], since), summary_minus(current, base[1])

    def _mark(self, key: Key, at: datetime, summary: Summary, *,
              counted_from: datetime | None = None) -> None:
        marks = self._marks.setdefault(key, [])
        if not marks and counted_from is not None and counted_from < at:
            # The replica counted nothing before `counted_from`: a reading of zero then, so the
            # first look (`watch --once`) judges what the replica has instead of nothing.
            marks.append((counted_from, zero_summary()))
        if marks and regressed(summary, marks[-1][1]):  # the replica restarted
            marks[:] = [(marks[-1][0], zero_summary())]
        marks.append((at, summary))
        if len(marks) > self._keep:
            del marks[1:len(marks) - self._keep + 1]  # keep the oldest: windows may start there


def left_out(failed: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The window's problems for replicas that could not be read: INCONCLUSIVE for each."""
    problems: dict[str, str] = {}
    for name, message in failed:
        key = f"{REPLICA_PREFIX}{name}"
        problems[key] = "; ".join(filter(None, (problems.get(key), f"INCONCLUSIVE: {message}")))
    return problems


def in_process_source(provider: StatsProvider, *, clock: Clock,
                      loop: asyncio.AbstractEventLoop | None = None) -> GatewaySource:
    """This process's own counters only."""
    return GatewaySource(FixedReplicas([InProcessStats(provider, loop=loop)]), clock=clock)


def http_source(urls: Sequence[str], *, clock: Clock, timeout_s: float = 3.0,
                client_factory: Callable[[], httpx.Client] | None = None) -> GatewaySource:
    """Replicas over HTTP, e.g. ["http://127.0.0.1:8080"]."""
    readers = [HttpStats(u, timeout_s=timeout_s,
                         client=client_factory() if client_factory else None) for u in urls]
    return GatewaySource(FixedReplicas(readers), clock=clock)
