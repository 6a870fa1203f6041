"""Metric sources on canned answers: windows cut from cumulative counters, garbage, outages."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from lastgood.adapters.metrics import open_metric_source
from lastgood.adapters.metrics.gateway import (
    CATEGORY_BOUNDS,
    GatewaySource,
    HttpStats,
    category_bin,
)
from lastgood.adapters.metrics.prometheus import PrometheusSource
from lastgood.domain.errors import InvalidInput, TransientError
from lastgood.domain.measurements import RateCounts
from lastgood.testing import EPOCH, FixedClock

AT = EPOCH.isoformat()


def entry(version: int, requests: int, errors: int = 0, *, since: str | None = AT,
          classes: Mapping[str, int] | None = None) -> dict[str, Any]:
    return {"version": version, "requests": requests, "errors": errors,
            "feedback": {"total": 0, "correct": 0}, "predictions": dict(classes or {}),
            "counting_since": since,
            "latency_histogram": {"bounds": [0.1, 1.0], "counts": [requests, 0, 0]},
            "value_histogram": {"bounds": [0.5], "counts": [0, 0]}}


class Canned:
    """A StatsReader answering whatever the test put in `doc` (or raising `error`)."""

    name = "canned"

    def __init__(self) -> None:
        self.doc: Mapping[str, Any] = {"env": "production", "versions": []}
        self.error: Exception | None = None

    def read(self, model: str) -> Mapping[str, Any]:
        if self.error is not None:
            raise self.error
        return self.doc


def test_a_version_counting_since_after_the_switch_is_read_whole() -> None:
    clock, canned = FixedClock(), Canned()
    source = GatewaySource([canned], clock=clock)
    canned.doc = {"env": "production", "versions": [entry(2, 50, 5, classes={"1": 50})]}
    window = source.window("m", "production", 2, since=EPOCH - timedelta(seconds=1))
    assert window.summary.errors == RateCounts(5, 50)
    assert window.summary.latency is not None
    assert window.summary.latency.counts == (50, 0, 0)
    assert window.summary.predictions is not None
    assert window.summary.predictions.bounds == CATEGORY_BOUNDS
    assert window.summary.predictions.counts[1] == 50


def test_a_restored_version_is_cut_at_the_reading_before_the_switch() -> None:
    clock, canned = FixedClock(), Canned()
    source = GatewaySource([canned], clock=clock)
    old = EPOCH.isoformat()
    canned.doc = {"env": "production", "versions": [entry(3, 10), entry(1, 1000, 10, since=old)]}
    clock.advance(60)
    source.window("m", "production", 3, since=EPOCH)  # the watch reads v3; v1 is marked too
    switch = clock.advance(5)
    clock.advance(10)
    canned.doc = {"env": "production", "versions": [entry(3, 10), entry(1, 1200, 11, since=old)]}
    window = source.window("m", "production", 1, since=switch)
    assert window.summary.errors == RateCounts(1, 200)
    assert window.started_at == switch


def test_without_an_earlier_reading_the_window_is_all_the_replica_counted() -> None:
    """`watch --once` reads each replica once: it judges what the replica has, and the window
    says it starts when the replica started counting (before `since`)."""
    clock, canned = FixedClock(), Canned()
    source = GatewaySource([canned], clock=clock)
    canned.doc = {"env": "production", "versions": [entry(1, 1000, 7, since=AT)]}
    clock.advance(100)
    first = source.window("m", "production", 1, since=EPOCH + timedelta(seconds=50))
    assert first.summary.errors == RateCounts(7, 1000)
    assert first.started_at == datetime.fromisoformat(AT)
    clock.advance(5)
    canned.doc = {"env": "production", "versions": [entry(1, 1040, 11, since=AT)]}
    later = source.window("m", "production", 1, since=EPOCH + timedelta(seconds=50))
    assert later.summary.errors == RateCounts(11, 1040)  # one growing window
    assert later.started_at == datetime.fromisoformat(AT)


def test_a_reading_before_the_window_cuts_it_there() -> None:
    clock, canned = FixedClock(), Canned()
    source = GatewaySource([canned], clock=clock)
    canned.doc = {"env": "production", "versions": [entry(1, 1000, 7, since=AT)]}
    clock.advance(100)
    source.window("m", "production", 1, since=EPOCH)
    read_at = clock.now()
    clock.advance(5)
    canned.doc = {"env": "production", "versions": [entry(1, 1040, 11, since=AT)]}
    later = source.window("m", "production", 1, since=read_at)
    assert later.summary.errors == RateCounts(4, 40)
    assert later.started_at == read_at


def test_a_replica_restart_restarts_its_window() -> None:
    clock, canned = FixedClock(), Canned()
    source = GatewaySource([canned], clock=clock)
    canned.doc = {"env": "production", "versions": [entry(1, 500, since=None)]}
    clock.advance(5)
    source.window("m", "production", 1, since=EPOCH)
    clock.advance(5)
    canned.doc = {"env": "production", "versions": [entry(1, 30, 3, since=None)]}
    window = source.window("m", "production", 1, since=EPOCH)
    assert window.summary.errors == RateCounts(3, 30)


@pytest.mark.parametrize(("doc", "problem"), [
    ({"env": "staging", "versions": []}, "serves env 'staging'"),
    ({"env": "production"}, "no list of versions"),
    ({"env": "production", "versions": [{"version": 1, "requests": "many"}]}, "garbage"),
    ({"env": "production", "versions": [{"requests": 3}]}, "garbage"),
])
def test_garbage_from_a_replica_is_a_problem_not_a_crash(doc: Any, problem: str) -> None:
    canned = Canned()
    canned.doc = doc
    window = GatewaySource([canned], clock=FixedClock()).window("m", "production", 1,
                                                                since=EPOCH)
    assert problem in window.problems["*"]


def test_one_replica_down_leaves_the_others_and_all_down_is_a_problem() -> None:
    up, down = Canned(), Canned()
    up.doc = {"env": "production", "versions": [entry(1, 20, 1)]}
    down.error = TransientError("connection refused")
    source = GatewaySource([up, down], clock=FixedClock())
    assert source.window("m", "production", 1, since=EPOCH).summary.errors == RateCounts(1, 20)
    up.error = TransientError("timed out")
    window = source.window("m", "production", 1, since=EPOCH)
    assert "connection refused" in window.problems["*"]
    assert "timed out" in window.problems["*"]


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_http_stats_translates_every_failure() -> None:
    def answer(status: int, body: bytes) -> HttpStats:
        return HttpStats("http://replica", client=mock_client(
            lambda request: httpx.Response(status, content=body)))

    assert answer(200, b'{"versions": []}').read("m") == {"versions": []}
    with pytest.raises(InvalidInput, match="did not answer JSON"):
        answer(200, b"<html>").read("m")
    with pytest.raises(InvalidInput, match="not a JSON object"):
        answer(200, b"[1]").read("m")
    with pytest.raises(TransientError, match="HTTP 500"):
        answer(500, b"").read("m")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientError, match="cannot reach"):
        HttpStats("http://replica", client=mock_client(refuse)).read("m")


def test_category_bins_are_stable() -> None:
    assert [category_bin(x) for x in ("0", "7", "<other>")] == [0, 7, 64]
    assert category_bin("cat") == category_bin("cat") < 64


def prometheus(handler: Callable[[httpx.Request], httpx.Response]) -> PrometheusSource:
    return PrometheusSource("http://prom", clock=FixedClock(EPOCH + timedelta(minutes=5)),
                            client=mock_client(handler))


def vector(*samples: tuple[dict[str, str], str]) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": {
        "resultType": "vector", "result": [{"metric": m, "value": [1.0, v]}
                                           for m, v in samples]}})


def test_prometheus_counts_are_per_series_increases() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        if query.startswith("max(timestamp"):
            return vector(({}, str(EPOCH.timestamp() + 299)))
        late = float(request.url.params["time"]) > EPOCH.timestamp() + 1
        a = {"__name__": "lastgood_requests_total", "instance": "a"}
        b = {"__name__": "lastgood_requests_total", "instance": "b"}
        e = {"__name__": "lastgood_errors_total", "instance": "a"}
        if late:  # b restarted (went down), a grew, errors appeared
            return vector((a, "150"), (b, "7"), (e, "5"))
        return vector((a, "100"), (b, "90"))

    window = prometheus(handler).window("m", "production", 1, since=EPOCH)
    assert window.summary.errors == RateCounts(5, 57)
    assert window.observed_at == EPOCH + timedelta(seconds=299)


def test_prometheus_leaves_the_errors_the_way_back_reproduced_out() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["query"].startswith("max(timestamp"):
            return vector(({}, str(EPOCH.timestamp() + 299)))
        if float(request.url.params["time"]) <= EPOCH.timestamp() + 1:
            return vector()
        return vector(({"__name__": "lastgood_requests_total"}, "100"),
                      ({"__name__": "lastgood_errors_total"}, "30"),
                      ({"__name__": "lastgood_errors_replayed_total"}, "28"),
                      ({"__name__": "lastgood_errors_input_total"}, "20"))

    window = prometheus(handler).window("m", "production", 1, since=EPOCH)
    assert window.summary.errors == RateCounts(10, 80)
    assert window.summary.reproduced == RateCounts(20, 28)


@pytest.mark.parametrize("response", [
    httpx.Response(200, content=b"not json"),
    httpx.Response(400, json={"status": "error", "error": "parse error"}),
    httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix",
                                                           "result": []}}),
    httpx.Response(200, json={"status": "success", "data": {"resultType": "vector",
                                                           "result": [{"metric": {}}]}}),
    vector(({"__name__": "lastgood_requests_total"}, "NaN")),
])
def test_prometheus_garbage_is_a_problem_not_a_crash(response: httpx.Response) -> None:
    window = prometheus(lambda request: response).window("m", "production", 1, since=EPOCH)
    assert window.problems["*"].startswith("prometheus http://prom: ")


def test_prometheus_down_is_a_problem() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    window = prometheus(refuse).window("m", "production", 1, since=EPOCH)
    assert "unreachable" in window.problems["*"]


def test_prometheus_without_series_says_why() -> None:
    window = prometheus(lambda request: vector()).window("m", "production", 1, since=EPOCH)
    assert "has no series for m v1" in window.problems["*"]


def test_sources_are_opened_by_name_with_the_fix_when_incomplete() -> None:
    clock = FixedClock()
    assert open_metric_source("gateway", clock=clock, gateway_urls=["http://x"]).describe() \
        == "gateway http://x"
    for kind, fix in (("gateway", "--gateway"), ("prometheus", "--prometheus-url"),
                      ("graphite", "use one of")):
        with pytest.raises(InvalidInput, match=fix):
            open_metric_source(kind, clock=clock)
    assert json.dumps(sorted(open_metric_source(
        "prometheus", clock=clock, prometheus_url="http://p").signals())) == \
        '["drift", "error_rate", "latency"]'
