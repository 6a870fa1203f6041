"""The Prometheus source: PromQL instant queries over HTTP against a real Prometheus server.

For a window since T it reads every counter series of the version at T and now (one query for
all of them at each time) and takes, per series, the increase: now - then, or now when the
series went down (a replica restarted; the counts from before the restart are lost, never made
negative), or now when the series did not exist yet at T. No extrapolation: the counts are the
exact counts Prometheus scraped, so they match the gateway's own. `observed_at` is the time of
the newest scraped sample, so a Prometheus that stopped scraping reads as stale (INCONCLUSIVE).

Metric and label names default to lastgood's own series and can be changed for servers that
export the same shapes under other names; `selector` adds matchers ("{env}" is replaced by the
environment, e.g. `job="lastgood-{env}"`). Feedback labels are not exported as series, so this
source provides no accuracy. Custom feedback metrics are exported, but not read here yet: their
sum is a gauge (values may be negative), and the per-series increase below takes any decrease for
a restart, so a window needs restarts found from the count series instead.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from lastgood.domain.errors import InvalidInput, LastGoodError, TransientError
from lastgood.domain.measurements import (
    CATEGORIES,
    CATEGORY_BOUNDS,
    Histogram,
    LiveWindow,
    RateCounts,
    Summary,
    category_bin,
)
from lastgood.ports import Clock

PROMETHEUS_SIGNALS = frozenset({"error_rate", "latency", "drift"})

Series = dict[frozenset[tuple[str, str]], float]


@dataclass(frozen=True, slots=True)
class PromNames:
    """The series and labels read (lastgood's own by default)."""

    requests: str = "lastgood_requests_total"
    errors: str = "lastgood_errors_total"
    # errors replayed on the way back, and those it reproduced (the input's: left out)
    errors_replayed: str = "lastgood_errors_replayed_total"
    errors_input: str = "lastgood_errors_input_total"
    latency: str = "lastgood_request_latency_seconds_bucket"
    classes: str = "lastgood_predictions_total"
    values: str = "lastgood_prediction_value_bucket"
    model_label: str = "model"
    version_label: str = "version"
    class_label: str = "value"
    selector: str = ""  # extra matchers, e.g. 'job="lastgood-{env}"'

    def metrics(self) -> tuple[str, ...]:
        return (self.requests, self.errors, self.errors_replayed, self.errors_input,
                self.latency, self.classes, self.values)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PrometheusSource:
    """A MetricSource over a Prometheus server's HTTP API (see the module doc)."""

    def __init__(self, url: str, *, clock: Clock, names: PromNames = PromNames(),
                 timeout_s: float = 5.0, retries: int = 1,
                 client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._clock, self._names, self._retries = clock, names, retries
        self._client = client or httpx.Client(timeout=timeout_s)

    def signals(self) -> frozenset[str]:
        return PROMETHEUS_SIGNALS

    def describe(self) -> str:
        return f"prometheus {self.url}"

    def close(self) -> None:
        self._client.close()

    def window(self, model: str, env: str, version: int, *, since: datetime) -> LiveWindow:
        now = self._clock.now()
        try:
            selector = self._selector(model, env, version, self._names.metrics())
            current = self._series(selector, at=now)
            earlier = self._series(selector, at=since) if since < now else {}
            observed = self._newest_sample(
                self._selector(model, env, version, (self._names.requests,)), at=now)
        except LastGoodError as exc:
            return LiveWindow(Summary(), since, now, {"*": f"prometheus {self.url}: "
                                                           f"{exc.message}"})
        if not current:
            return LiveWindow(Summary(), since, now, {"*": (
                f"prometheus {self.url} has no series for {model} v{version} ({selector}): "
                "no traffic yet, or the replicas are not scraped")})
        summary = self._summary(_increase(current, earlier))
        return LiveWindow(summary, since, observed or now)

    # -- queries -----------------------------------------------------------------------------

    def _selector(self, model: str, env: str, version: int, metrics: tuple[str, ...]) -> str:
        n = self._names
        names = "|".join(re.escape(m) for m in metrics)
        parts = [f'__name__=~"{names}"', f"{n.model_label}={_quote(model)}",
                 f"{n.version_label}={_quote(str(version))}"]
        if n.selector:
            parts.append(n.selector.replace("{env}", env))
        return "{" + ", ".join(parts) + "}"

    def _series(self, selector: str, *, at: datetime) -> Series:
        found: Series = {}
        for item in self._query(selector, at=at):
            labels = frozenset((str(k), str(v)) for k, v in item["metric"].items())
            found[labels] = _number(item["value"][1])
        return found

    def _newest_sample(self, selector: str, *, at: datetime) -> datetime | None:
        result = self._query(f"max(timestamp({selector}))", at=at)
        if not result:
            return None
        return datetime.fromtimestamp(_number(result[0]["value"][1]), UTC)

    def _query(self, promql: str, *, at: datetime) -> list[Mapping[str, Any]]:
        params = {"query": promql, "time": f"{at.timestamp():.3f}"}
        for attempt in range(self._retries + 1):
            try:
                response = self._client.get(f"{self.url}/api/v1/query", params=params)
                break
            except httpx.HTTPError as exc:
                if attempt == self._retries:
                    raise TransientError(f"unreachable ({type(exc).__name__}: {exc})",
                                         fix="start Prometheus or fix --prometheus-url") from exc
        return _vector(response)

    # -- assembly ----------------------------------------------------------------------------

    def _summary(self, counts: Series) -> Summary:
        n = self._names

        def total(metric: str) -> int:
            return round(sum(v for k, v in counts.items() if ("__name__", metric) in k))

        latency = _buckets(counts, n.latency)
        values = _buckets(counts, n.values)
        predictions = values if values is not None and values.total > 0 else \
            self._classes(counts)
        errors, requests = total(n.errors), total(n.requests)
        apart = min(total(n.errors_input), errors)  # the way back failed too: the input's
        replayed = total(n.errors_replayed)
        return Summary(errors=RateCounts(errors - apart, max(requests - apart, 0)),
                       latency=latency, predictions=predictions,
                       reproduced=RateCounts(apart, max(replayed, apart)) if replayed else None)

    def _classes(self, counts: Series) -> Histogram | None:
        n = self._names
        bins = [0] * (CATEGORIES + 1)
        seen = False
        for key, value in counts.items():
            labels = dict(key)
            if labels.get("__name__") == n.classes and n.class_label in labels:
                bins[category_bin(labels[n.class_label])] += round(value)
                seen = True
        return Histogram(CATEGORY_BOUNDS, tuple(bins)) if seen else None


def _vector(response: httpx.Response) -> list[Mapping[str, Any]]:
    """The result of an instant query; garbage is InvalidInput, a refusal TransientError."""
    try:
        body = response.json()
    except ValueError as exc:
        raise InvalidInput(f"answered HTTP {response.status_code} without JSON: "
                           f"{response.text[:80]!r}", fix="is --prometheus-url a Prometheus "
                           "server?") from exc
    if not isinstance(body, Mapping) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, Mapping) else body
        raise TransientError(f"query failed (HTTP {response.status_code}): {error}",
                             fix="check the Prometheus server and the metric names")
    data = body.get("data")
    if not isinstance(data, Mapping) or data.get("resultType") not in ("vector", "scalar") \
            or not isinstance(data.get("result"), list):
        raise InvalidInput("the answer is not an instant vector", fix="check the server")
    result: list[Any] = data["result"]
    for item in result:
        if not isinstance(item, Mapping) or not isinstance(item.get("metric"), Mapping) \
                or not isinstance(item.get("value"), list) or len(item["value"]) != 2:
            raise InvalidInput(f"a sample is garbage: {str(item)[:80]}", fix="check the server")
    return result


def _number(text: Any) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"a sample value {text!r} is not a number",
                           fix="check the server") from exc
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"a counter reads {value}", fix="check the exporter")
    return value


def _increase(current: Series, earlier: Series) -> Series:
    """Per series: now - then; now when it went down (restart) or did not exist then."""
    out: Series = {}
    for key, value in current.items():
        before = earlier.get(key, 0.0)
        out[key] = value - before if value >= before else value
    return out


def _buckets(counts: Series, metric: str) -> Histogram | None:
    """Per-bucket counts from cumulative `le` buckets summed over every series."""
    by_le: dict[float, float] = {}
    for key, value in counts.items():
        labels = dict(key)
        if labels.get("__name__") == metric and "le" in labels:
            le = float(labels["le"])
            by_le[le] = by_le.get(le, 0.0) + value
    if not by_le:
        return None
    bounds = sorted(b for b in by_le if math.isfinite(b))
    cumulative = [round(by_le[b]) for b in bounds] + [round(by_le.get(math.inf, 0.0))]
    per_bucket = [cumulative[0]] + [b - a for a, b in itertools.pairwise(cumulative)]
    return Histogram(tuple(bounds), tuple(per_bucket))
