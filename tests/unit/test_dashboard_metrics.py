"""The dashboard's live metrics: points from real counters only, baselines read under the names
verify records them, and the band a default health policy tolerates."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from lastgood.dashboard.metrics import (
    MetricsSeries,
    ServedStats,
    VersionCounters,
    baseline_of,
    point,
    tolerated_band,
)
from lastgood.dashboard.stats import metric_source_stats
from lastgood.domain.deployments import Deployment
from lastgood.domain.measurements import Histogram, LiveWindow, RateCounts, Summary
from lastgood.testing import EPOCH, make_verified_record


def deployment(baseline: dict[str, float] | None) -> Deployment:
    record = make_verified_record(baseline=baseline) if baseline is not None else None
    return Deployment(id=1, model="iris", env="production", version=2, started_at=EPOCH,
                      deployed_by="t", reason="r", operation_id=None, verified=record)


def counters(version: int = 3, requests: int = 0, errors: int = 0, *, p95: float | None = 2.0,
             labelled: int = 0, correct: int = 0) -> VersionCounters:
    return VersionCounters(version, requests, errors, p95, labelled, correct)


def test_a_point_is_the_change_since_the_previous_sample() -> None:
    found = point(counters(requests=300, errors=30, labelled=20, correct=5),
                  counters(requests=100, errors=10, labelled=10, correct=5), EPOCH)
    assert found == {"t": EPOCH.isoformat(), "version": 3, "latency_p95_ms": 2.0,
                     "error_rate": 0.1, "accuracy": 0.0}


def test_the_first_point_of_a_version_covers_its_whole_life() -> None:
    found = point(counters(requests=50, errors=5, labelled=4, correct=3), None, EPOCH)
    assert (found["error_rate"], found["accuracy"]) == (0.1, 0.75)


def test_no_traffic_and_no_labels_give_no_numbers() -> None:
    same = counters(requests=10, labelled=2, correct=2)
    assert point(same, same, EPOCH) | {"t": ""} == {
        "t": "", "version": 3, "latency_p95_ms": None, "error_rate": None, "accuracy": None}


def test_counters_that_went_down_start_over_instead_of_going_negative() -> None:
    found = point(counters(requests=10, errors=1), counters(requests=500, errors=400), EPOCH)
    assert found["error_rate"] == 0.1  # a replica restarted: its counters began again


@pytest.mark.parametrize(("recorded", "expected"), [
    ({"latency_p95_ms": 41.0}, {"latency_p95_ms": 41.0}),
    ({"p95_ms": 41.0, "error_rate": 0.01}, {"latency_p95_ms": 41.0, "error_rate": 0.01}),
    ({"latency_p95": 0.041}, {"latency_p95_ms": 41.0}),  # the watcher's seconds
    ({"accuracy": 0.97, "custom.revenue": 3.0}, {"accuracy": 0.97}),
    ({"accuracy": float("nan")}, {}),
])
def test_baselines_are_read_under_the_names_verify_records(recorded: dict[str, float],
                                                          expected: dict[str, float]) -> None:
    assert baseline_of(deployment(recorded)) == expected


def test_an_unverified_deployment_has_no_baseline() -> None:
    assert baseline_of(deployment(None)) is None
    assert baseline_of(None) is None


def test_the_band_runs_from_the_baseline_the_way_each_signal_gets_worse() -> None:
    band = tolerated_band({"error_rate": 0.01, "accuracy": 0.9, "latency_p95_ms": 40.0})
    assert band["error_rate"] == pytest.approx([0.01, 0.0125])  # 25 % relative
    assert band["accuracy"] == pytest.approx([0.88, 0.9])  # 2 points absolute, downwards
    assert band["latency_p95_ms"] == pytest.approx([40.0, 48.0])  # 20 % relative


def stats(live: int, *versions: VersionCounters) -> ServedStats:
    return ServedStats(source="replica", live_version=live, versions=versions)


def test_the_series_keeps_points_of_the_live_version_only() -> None:
    series = MetricsSeries(min_interval_s=0)
    series.sample("iris", "production", stats(3, counters(3, 10, 1), counters(2, 99, 0)), at=EPOCH)
    later = EPOCH + timedelta(seconds=2)
    found = series.sample("iris", "production",
                          stats(2, counters(3, 10, 1), counters(2, 199, 0)), at=later)
    assert [(p["version"], p["error_rate"]) for p in found] == [(3, 0.1), (2, 0.0)]


def test_samples_closer_than_the_interval_reuse_the_previous_one() -> None:
    series = MetricsSeries(min_interval_s=1.0)
    series.sample("iris", "production", stats(3, counters(3, 10)), at=EPOCH)
    found = series.sample("iris", "production", stats(3, counters(3, 20)),
                          at=EPOCH + timedelta(seconds=0.5))
    assert len(found) == 1


def test_without_a_source_the_series_stays_empty() -> None:
    assert MetricsSeries().sample("iris", "production", None, at=EPOCH) == []


def test_the_ring_buffer_forgets_the_oldest_points() -> None:
    series = MetricsSeries(capacity=3, min_interval_s=0)
    for i in range(1, 6):
        series.sample("m", "e", stats(1, counters(1, i * 10)), at=EPOCH + timedelta(seconds=i))
    assert [p["t"] for p in series.sample("m", "e", None, at=EPOCH)] == [
        (EPOCH + timedelta(seconds=i)).isoformat() for i in (3, 4, 5)]


class FakeSource:
    """A MetricSource answering one fixed window (or a problem), recording what it was asked."""

    def __init__(self, window: LiveWindow) -> None:
        self.result, self.asked = window, []

    def window(self, model: str, env: str, version: int, *, since: datetime) -> LiveWindow:
        self.asked.append((model, env, version, since))
        return self.result

    def signals(self) -> frozenset[str]:
        return frozenset({"error_rate", "latency", "accuracy"})

    def describe(self) -> str:
        return "gateway http://127.0.0.1:9"


def test_a_metric_source_window_since_the_switch_becomes_counters() -> None:
    summary = Summary(errors=RateCounts(3, 200), accuracy=RateCounts(45, 50),
                      latency=Histogram.of([0.010] * 95 + [0.500] * 5, bounds=(0.01, 0.1, 1.0)))
    source = FakeSource(LiveWindow(summary, started_at=EPOCH, observed_at=EPOCH))
    live = deployment(None)
    found = metric_source_stats(source, lambda model, env: live)("iris", "production")
    assert source.asked == [("iris", "production", 2, EPOCH)]
    assert found == ServedStats("gateway http://127.0.0.1:9", 2, (
        VersionCounters(2, 200, 3, 10.0, 50, 45),))


def test_a_metric_source_that_is_down_gives_no_numbers_and_says_why() -> None:
    down = LiveWindow(Summary(), started_at=EPOCH, observed_at=EPOCH,
                      problems={"*": "connection refused"})
    found = metric_source_stats(FakeSource(down), lambda m, e: deployment(None))("iris", "prod")
    assert found == ServedStats("gateway http://127.0.0.1:9: connection refused", 2, ())
    assert metric_source_stats(FakeSource(down), lambda m, e: None)("iris", "prod") is None
