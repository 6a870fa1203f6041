"""Metric history as a person reads it: spans, resolutions, the baseline each span was judged
against (after a rollback, the restored version's own), markers, drift, and bounded readings."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from lastgood.domain.baselines import stated_record, summary_to_dict
from lastgood.domain.deployments import DeploymentEnd, Environment, VerifiedRecord
from lastgood.domain.errors import InvalidInput, NotFound
from lastgood.domain.history import (
    MAX_BUCKETS,
    HistoryPoint,
    epoch_s,
    parse_span,
    resolution_for,
    stored,
)
from lastgood.domain.history_view import MarkerKind, view_from_json, view_to_json
from lastgood.domain.measurements import LATENCY_BOUNDS, Histogram, Moments, RateCounts, Summary
from lastgood.services.history import HistoryService
from lastgood.testing import FixedClock, MemoryRegistry, make_new_version

MODEL, ENV = "iris", "production"


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("1h", 3600), (" 2 d ", 172_800),
                                               ("1w", 604_800), ("90s", 90), ("30d", 2_592_000)])
def test_spans_read(text: str, seconds: int) -> None:
    assert parse_span(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("text", "why"), [("1x", "cannot read"), ("", "cannot read"),
                                           ("-1h", "cannot read"), ("31d", "outside"),
                                           ("10s", "outside"), ("1.5h", "cannot read")])
def test_bad_spans_are_refused_with_the_fix(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as caught:
        parse_span(text)
    assert caught.value.fix


@pytest.mark.parametrize(("span", "buckets", "resolution"), [
    (timedelta(hours=1), MAX_BUCKETS, 10), (timedelta(days=1), MAX_BUCKETS, 60),
    (timedelta(days=7), MAX_BUCKETS, 600), (timedelta(days=30), MAX_BUCKETS, 1800),
    (timedelta(hours=1), 60, 60), (timedelta(days=7), 60, 10_200)])
def test_the_resolution_follows_the_span(span: timedelta, buckets: int, resolution: int) -> None:
    assert resolution_for(span, buckets=buckets) == resolution
    assert span.total_seconds() / resolution <= min(buckets, MAX_BUCKETS)


def test_the_stored_form_is_compact_and_exact() -> None:
    summary = Summary(errors=RateCounts(3, 200), accuracy=RateCounts(40, 50),
                      latency=Histogram.of([0.004] * 150 + [0.2] * 50, LATENCY_BOUNDS),
                      predictions=Histogram((0.5, 1.5), (10, 5, 0)),
                      custom={"revenue": Moments(4, 2.5, 1.0)})
    point = HistoryPoint(MODEL, ENV, 1, "r1", 10, 600, summary)
    row = stored(point)
    assert row.point() == point
    assert row.errors == (3, 200)
    assert row.accuracy == (40, 50)
    assert row.quantiles == tuple(summary.latency.quantile(q) for q in (0.5, 0.95, 0.99))
    assert row.latency is not None
    assert len(json.loads(row.latency)["c"]) == 4
    for damaged in ({"errors": (201, 200)}, {"latency": '{"n":"l","c":[1]}'},
                    {"custom": "{"}):
        with pytest.raises(InvalidInput, match="damaged"):
            row._replace(**damaged).point()


class Story:
    """v1 verified (measured), v2 deployed and verified by hand, rolled back to v1."""

    def __init__(self) -> None:
        self.clock = FixedClock()
        self.registry = MemoryRegistry()
        self.start = self.clock.now()
        with self.registry() as uow:
            uow.environments.put(Environment(name=ENV))
            for tag in ("v1", "v2"):
                uow.versions.add(make_new_version(MODEL, tag=tag), at=self.start, actor="t")
            v1 = self._deploy(uow, 1, minutes=0)
            uow.deployments.set_verified(v1.id, self._record(
                minutes=5, measured=Summary(errors=RateCounts(1, 1000), accuracy=RateCounts(
                    950, 1000), latency=Histogram.of([0.01] * 100, LATENCY_BOUNDS),
                    predictions=Histogram((0.5, 1.5), (500, 500, 0)))))
            v2 = self._deploy(uow, 2, minutes=10)
            uow.deployments.set_verified(v2.id, self._record(minutes=12, stated={"accuracy": 0.6}))
            uow.deployments.end(v2.id, at=self.at(20), end=DeploymentEnd.ROLLED_BACK, reason="t")
            self.restored = uow.deployments.start(model=MODEL, env=ENV, version=1,
                                                  at=self.at(20), actor="oncall",
                                                  reason="accuracy fell", operation_id=None)
            uow.history.add([self.point(1, 2), self.point(1, 3), self.point(2, 12),
                             self.point(2, 13), self.point(1, 25)])
            uow.commit()
        self.clock.set(self.at(30))

    def at(self, minutes: float):  # type: ignore[no-untyped-def]
        return self.start + timedelta(minutes=minutes)

    def _deploy(self, uow, version: int, *, minutes: float):  # type: ignore[no-untyped-def]
        live = uow.deployments.live(MODEL, ENV)
        if live is not None:
            uow.deployments.end(live.id, at=self.at(minutes), end=DeploymentEnd.SUPERSEDED,
                                reason="t")
        return uow.deployments.start(model=MODEL, env=ENV, version=version,
                                     at=self.at(minutes), actor="t", reason=f"release v{version}",
                                     operation_id=None)

    def _record(self, *, minutes: float, measured: Summary | None = None,
                stated: dict[str, float] | None = None) -> VerifiedRecord:
        distribution = summary_to_dict(measured) if measured else stated_record(
            stated or {}, by="alice", at=self.at(minutes))
        return VerifiedRecord(baseline=dict(stated or {"error_rate": 0.001}),
                              window_start=self.at(minutes - 1), window_end=self.at(minutes),
                              approver="alice", at=self.at(minutes), distribution=distribution)

    def point(self, version: int, minutes: float) -> HistoryPoint:
        at_s = epoch_s(self.at(minutes)) // 10 * 10
        flipped = (0, 100, 0) if version == 2 else (50, 50, 0)
        return HistoryPoint(MODEL, ENV, version, "r1", 10, at_s, Summary(
            errors=RateCounts(version, 100), accuracy=RateCounts(90 if version == 1 else 40, 100),
            latency=Histogram.of([0.01 * version] * 100, LATENCY_BOUNDS),
            predictions=Histogram((0.5, 1.5), flipped)))


def test_each_span_is_judged_against_its_own_reference_and_markers_are_there() -> None:
    story = Story()
    view = HistoryService(uow=story.registry, clock=story.clock).view(
        MODEL, env=ENV, span=timedelta(hours=1))
    assert view.resolution_s == 10
    assert [(p.version, p.requests, p.accuracy) for p in view.points] == [
        (1, 100, 0.9), (1, 100, 0.9), (2, 100, 0.4), (2, 100, 0.4), (1, 100, 0.9)]
    judged = [(s.version, s.reference_version) for s in view.spans]
    assert judged == [(1, 1), (2, 2), (1, 1)]  # restored v1: its own record, never v2's
    assert view.spans[1].values["accuracy"] == 0.6  # the value stated by hand
    assert view.spans[2].values["accuracy"] == 0.95  # measured
    low, high = view.spans[2].band["accuracy"]
    assert low < 0.95 == high  # accuracy gets worse downwards
    assert [m.kind for m in view.markers] == [MarkerKind.DEPLOY, MarkerKind.VERIFY,
                                              MarkerKind.DEPLOY, MarkerKind.VERIFY,
                                              MarkerKind.ROLLBACK]
    assert "rollback v2 -> v1" in view.markers[-1].text
    # drift against the judging record's predictions: v1's match them; v2's record was
    # stated by hand, with no predictions to compare with
    assert view.points[0].drift_psi is not None
    assert view.points[0].drift_psi < 0.05
    assert view.points[2].drift_psi is None
    assert view_from_json(view_to_json(view)) == view


def test_a_gap_is_no_point_and_a_longer_span_merges_buckets() -> None:
    story = Story()
    view = HistoryService(uow=story.registry, clock=story.clock).view(
        MODEL, env=ENV, span=timedelta(hours=1), buckets=12)  # 5 min buckets
    assert view.resolution_s == 300
    assert [(p.version, p.requests) for p in view.points] == [(1, 200), (2, 200), (1, 100)]
    minutes = [(p.at - story.start).total_seconds() / 60 for p in view.points]
    assert minutes == [0, 10, 25]  # nothing at 5, 15, 20: gaps, not zeros


def test_unknown_names_and_bad_spans_are_refused() -> None:
    story = Story()
    history = HistoryService(uow=story.registry, clock=story.clock)
    with pytest.raises(NotFound, match="unknown model"):
        history.view("nope", env=ENV, span=timedelta(hours=1))
    with pytest.raises(NotFound):
        history.view(MODEL, env="nowhere", span=timedelta(hours=1))
    with pytest.raises(InvalidInput, match="outside"):
        history.view(MODEL, env=ENV, span=timedelta(days=60))


def test_merging_in_the_stored_form_matches_merging_summaries() -> None:
    from lastgood.domain.history import rollup, rollup_stored

    story = Story()
    points = [story.point(1, 2), story.point(1, 2.1), story.point(2, 2.2)]
    exact = rollup(points, 600)
    buckets, damaged = rollup_stored([stored(p) for p in points], 600)
    assert damaged == 0
    assert [(b.version, b.at_s) for b in buckets] == [(p.version, p.at_s) for p in exact]
    for bucket, point in zip(buckets, exact, strict=True):
        summary = point.summary
        assert summary.errors is not None
        assert summary.latency is not None
        assert bucket.errors == (summary.errors.events, summary.errors.trials)
        assert bucket.quantiles == tuple(summary.latency.quantile(q) for q in (0.5, 0.95, 0.99))
        assert bucket.predictions() == summary.predictions
        assert dict(bucket.custom) == dict(summary.custom)
    broken = stored(points[0])._replace(latency='{"n":"l","c":[999,1]}')
    kept, damaged = rollup_stored([broken, stored(points[1])], 600)
    assert damaged == 1
    assert kept[0].points == (stored(points[1]),)  # the sound one is kept
    alone, damaged = rollup_stored([broken._replace(errors=(5, 1))], 600)
    assert (alone, damaged) == ([], 1)


def test_a_day_reads_its_own_tier_then_only_what_is_not_rolled_up_yet() -> None:
    from lastgood.domain.history import ROLLED_UP

    story = Story()
    with story.registry() as uow:
        # minutes 0..9 rolled up into the 1 min tier; the 10 s points stay there for their hour
        uow.history.add([HistoryPoint(MODEL, ENV, 1, ROLLED_UP, 60,
                                      epoch_s(story.at(m)), Summary(
                                          errors=RateCounts(0, 600))) for m in range(10)])
        uow.commit()
    view = HistoryService(uow=story.registry, clock=story.clock).view(
        MODEL, env=ENV, span=timedelta(days=1))
    assert view.resolution_s == 60
    by_minute = {(p.at - story.start).total_seconds() / 60: p.requests for p in view.points}
    assert by_minute[2] == 600  # the minute tier's, not also the 10 s point under it
    assert by_minute[12] == 100  # after the minute tier's newest bucket: the 10 s points
    assert by_minute[25] == 100


def test_drift_from_the_non_empty_bins_is_the_population_stability_index() -> None:
    import random

    from lastgood.domain.history_view import DriftBase
    from lastgood.domain.measurements import CATEGORY_BOUNDS
    from lastgood.domain.sequential import psi

    rng = random.Random(7)
    for _ in range(50):
        base = [rng.choice((0, 0, rng.randrange(1, 500))) for _ in range(len(CATEGORY_BOUNDS) + 1)]
        base[0] += 1
        live = [rng.choice((0, 0, 0, rng.randrange(1, 300))) for _ in base]
        live[-1] += 1
        pairs = [x for i, c in enumerate(live) if c for x in (i, c)]
        prepared = DriftBase(Histogram(CATEGORY_BOUNDS, tuple(base)))
        assert prepared.psi(pairs) == pytest.approx(psi(base, live), rel=1e-12, abs=1e-12)
