"""Baselines stated by a person at `verify`, accuracy in the default policy, and deployments
without labels: the watch stepped on in-memory fakes and a FixedClock."""

from __future__ import annotations

import pytest

from lastgood.domain.baselines import check_stated
from lastgood.domain.decisions import DecisionKind
from lastgood.domain.errors import InvalidInput
from lastgood.domain.health import Verdict
from lastgood.domain.measurements import Histogram, RateCounts, Summary
from lastgood.services.policies import PolicyBook
from lastgood.services.watch import Observation, WatchService, WatchSettings
from tests.unit.watch_fakes import ENV, MODEL, RecordingNotifier, WatchedFake

AVAILABLE = {"error_rate", "latency", "accuracy", "drift"}


def labelled(requests: int, errors: int, *, labels: int = 0, correct: int = 0,
             latency_s: float = 0.02) -> Summary:
    return Summary(errors=RateCounts(errors, requests),
                   latency=Histogram.of([latency_s] * requests),
                   accuracy=RateCounts(correct, labels),
                   predictions=Histogram.of([float(i % 3) for i in range(requests)],
                                            (0.5, 1.5, 2.5)))


def default_watch(w: WatchedFake) -> WatchService:
    """The watch with lastgood's default policy, as `lastgood watch --env E` runs it."""
    return WatchService(uow=w.world.registry, deployments=w.world.services.deployments,
                        source=w.source, notifier=RecordingNotifier(), clock=w.clock,
                        policies=PolicyBook([], available=AVAILABLE),
                        settings=WatchSettings(interval_s=0.0))


def hand_verified_then_v2(baseline: dict[str, float]) -> tuple[WatchedFake, WatchService]:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.world.deploy(1, verify=False)
    w.clock.advance(60)
    w.world.services.deployments.verify(MODEL, env=ENV, baseline=baseline,
                                        reason="checked the dashboard", actor="carol")
    w.world.deploy(2, verify=False)
    return w, default_watch(w)


def first_rollback(watch: WatchService, w: WatchedFake, data: list[Summary]) -> Observation:
    """Tick once a second through growing windows; the observation that rolled back."""
    for summary in data:
        w.clock.advance(1)
        w.source.data[2] = summary
        [seen] = watch.tick(ENV)
        if seen.decision.kind is DecisionKind.ROLLBACK:
            return seen
    raise AssertionError(f"never rolled back: {seen.assessment.reason}")


def test_a_stated_accuracy_catches_an_accuracy_drop_from_the_first_labels() -> None:
    w, watch = hand_verified_then_v2({"accuracy": 0.95, "error_rate": 0.01})
    start = w.clock.now()
    # 10 requests/s, every one labelled, 80 % right against the stated 95 %.
    seen = first_rollback(watch, w, [labelled(10 * s, 0, labels=10 * s, correct=8 * s)
                                     for s in range(1, 31)])
    accuracy = {e.signal: e for e in seen.assessment.signals}["accuracy"]
    assert accuracy.verdict in (Verdict.DEGRADED, Verdict.FAILED)
    assert "vs baseline 95.00% stated by carol" in accuracy.explanation
    assert "stated by carol" in seen.baseline_from
    assert seen.action.startswith("rolled back to v1")
    assert (w.clock.now() - start).total_seconds() <= 30


def test_a_stated_error_rate_catches_an_error_rate_rise_in_seconds() -> None:
    w, watch = hand_verified_then_v2({"error_rate": 0.01, "p95_ms": 40})
    start = w.clock.now()
    # 1 % -> 5 % errors at 10 requests/s, no labels at all.
    seen = first_rollback(watch, w, [labelled(10 * s, s // 2) for s in range(1, 120)])
    errors = {e.signal: e for e in seen.assessment.signals}["error_rate"]
    assert errors.verdict in (Verdict.DEGRADED, Verdict.FAILED)
    assert "stated by carol" in errors.explanation
    assert (w.clock.now() - start).total_seconds() < 60
    assert w.live()[0] == 1


def test_a_deploy_without_labels_is_judged_and_verified_on_the_other_signals() -> None:
    w, watch = hand_verified_then_v2({"error_rate": 0.01, "accuracy": 0.95})
    w.clock.advance(601)
    w.source.data[2] = labelled(6000, 30)  # 0.5 % errors, no feedback at all
    [seen] = watch.tick(ENV)
    signals = {e.signal: e for e in seen.assessment.signals}
    assert signals["accuracy"].verdict is Verdict.INCONCLUSIVE
    assert signals["accuracy"].abstained
    assert signals["error_rate"].verdict is Verdict.HEALTHY
    assert seen.assessment.verdict is Verdict.HEALTHY
    assert "accuracy not judged" in seen.assessment.reason
    assert seen.action == "verified"


def test_a_stated_accuracy_alone_leaves_the_rest_to_the_own_first_window() -> None:
    w, watch = hand_verified_then_v2({"accuracy": 0.95})  # nothing stated about requests
    w.clock.advance(5)
    w.source.data[2] = labelled(50, 0)
    [early] = watch.tick(ENV)
    assert early.assessment.verdict is Verdict.INCONCLUSIVE  # never HEALTHY from nothing
    assert "recording v2's own first bake window" in early.baseline_from
    assert "stated by carol (accuracy=0.95)" in early.baseline_from
    w.clock.advance(600)
    w.source.data[2] = labelled(6000, 60)
    [recorded] = watch.tick(ENV)
    assert recorded.action == "baseline recorded"
    w.clock.advance(5)
    w.source.data[2] = labelled(50, 0, labels=50, correct=20)  # 40 % right against 95 %
    [judged] = watch.tick(ENV)
    accuracy = {e.signal: e for e in judged.assessment.signals}["accuracy"]
    assert accuracy.verdict is Verdict.FAILED
    assert "stated by carol" in accuracy.explanation


@pytest.mark.parametrize(("name", "value", "word"), [
    ("accuracy", 1.7, "between 0 and 1"), ("error_rate", -0.1, "between 0 and 1"),
    ("p95_ms", -3.0, "cannot be negative"), ("latency_p99_ms", -1.0, "cannot be negative")])
def test_impossible_stated_values_are_refused_at_verify(name: str, value: float,
                                                        word: str) -> None:
    with pytest.raises(InvalidInput, match=word):
        check_stated({name: value})
    w = WatchedFake()
    w.world.add_version(tag="v1")
    w.world.deploy(1, verify=False)
    with pytest.raises(InvalidInput, match=f"--metric (latency_)?{name.removeprefix('latency_')}"):
        w.world.services.deployments.verify(MODEL, env=ENV, baseline={name: value},
                                            reason="by hand", actor="carol")
    assert w.live() == (1, False)  # nothing half-written


def test_a_deployment_leaning_toward_a_regression_is_not_verified_yet() -> None:
    w, watch = hand_verified_then_v2({"error_rate": 0.01, "accuracy": 0.90})
    w.clock.advance(601)
    # 86 % right against a tolerated 88 %: not significant yet, but leaning the wrong way.
    w.source.data[2] = labelled(6000, 60, labels=300, correct=258)
    [seen] = watch.tick(ENV)
    assert seen.assessment.verdict is Verdict.HEALTHY
    assert seen.action == ""
    assert w.live() == (2, False)
    w.clock.advance(600)
    w.source.data[2] = labelled(12000, 120, labels=1200, correct=1000)  # 83 %: caught
    [later] = watch.tick(ENV)
    assert later.decision.kind is DecisionKind.ROLLBACK


def test_a_stated_accuracy_alone_rolls_back_a_bad_deploy_from_the_first_labels() -> None:
    """Nothing stated about requests: the accuracy still judges from the first label."""
    w, watch = hand_verified_then_v2({"accuracy": 0.97})
    start = w.clock.now()
    # 10 labelled requests/s, 60 % right against the stated 97 %.
    seen = first_rollback(watch, w, [labelled(10 * s, 0, labels=10 * s, correct=6 * s)
                                     for s in range(1, 31)])
    accuracy = {e.signal: e for e in seen.assessment.signals}["accuracy"]
    assert accuracy.verdict in (Verdict.DEGRADED, Verdict.FAILED)
    assert "stated by carol" in accuracy.explanation
    assert seen.action.startswith("rolled back to v1")
    assert (w.clock.now() - start).total_seconds() <= 30


def test_a_stated_accuracy_alone_never_verifies_on_accuracy_alone() -> None:
    w, watch = hand_verified_then_v2({"accuracy": 0.97})
    w.clock.advance(601)
    w.source.data[2] = labelled(6000, 6, labels=600, correct=590)
    [seen] = watch.tick(ENV)
    assert seen.action == "baseline recorded"  # its own first window, for the request signals
    assert w.live() == (2, False)


@pytest.mark.parametrize(("given", "word"), [
    ("acuracy", "did you mean accuracy?"), ("p95", "did you mean latency_p95_ms?"),
    ("error-rate", "did you mean error_rate?"), ("custom.Revenue", "custom.<name>"),
    ("auc", "known names")])
def test_verify_knows_its_metric_names(given: str, word: str) -> None:
    w = WatchedFake()
    w.world.add_version(tag="v1")
    w.world.deploy(1, verify=False)
    with pytest.raises(InvalidInput, match=word):
        w.world.services.deployments.verify(MODEL, env=ENV, baseline={given: 0.5},
                                            reason="by hand", actor="carol")
    assert w.live() == (1, False)  # nothing half-written


def test_verify_keeps_the_vocabulary_spelling() -> None:
    w = WatchedFake()
    w.world.add_version(tag="v1")
    w.world.deploy(1, verify=False)
    dep = w.world.services.deployments.verify(
        MODEL, env=ENV, baseline={"p95_ms": 41, "custom.revenue": 12.5}, reason="by hand",
        actor="carol")
    assert dep.verified is not None
    assert dep.verified.baseline == {"latency_p95_ms": 41, "custom.revenue": 12.5}


def test_a_stated_latency_is_judged_with_the_tolerance_noise_needs() -> None:
    """p95_ms=100 stated: a known-good version on a busier host (125 ms) is not flagged; one
    at twice the stated value is."""
    w, watch = hand_verified_then_v2({"p95_ms": 100})
    w.clock.advance(5)
    w.source.data[2] = labelled(2000, 0, latency_s=0.125)
    [busier] = watch.tick(ENV)
    latency = {e.signal: e for e in busier.assessment.signals}["latency_p99"]
    assert latency.verdict is Verdict.HEALTHY, latency.explanation
    w.clock.advance(5)
    w.source.data[2] = labelled(2000, 0, latency_s=0.2)
    [slower] = watch.tick(ENV)
    latency = {e.signal: e for e in slower.assessment.signals}["latency_p99"]
    assert latency.verdict in (Verdict.DEGRADED, Verdict.FAILED), latency.explanation
