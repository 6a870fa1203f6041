"""Where baselines come from: recorded records, a first deployment's own window, segments."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lastgood.domain.baselines import (
    FORMAT,
    headline,
    summary_from_dict,
    summary_minus,
    summary_plus,
    summary_to_dict,
)
from lastgood.domain.decisions import ActionKind
from lastgood.domain.deployments import Deployment, DeploymentEnd
from lastgood.domain.errors import InvalidInput
from lastgood.domain.health import Verdict
from lastgood.domain.measurements import Histogram, Moments, RateCounts, Summary
from lastgood.domain.watching import (
    default_policy,
    recent_actions,
    reference_deployment,
    window_start,
)
from lastgood.testing import EPOCH, make_verified_record
from tests.unit.watch_fakes import BASELINE, ENV, MODEL, WatchedFake, traffic


def test_a_summary_survives_the_round_trip_through_json() -> None:
    summary = Summary(errors=RateCounts(3, 100), latency=Histogram.of([0.01, 0.2]),
                      accuracy=RateCounts(90, 100),
                      predictions=Histogram((1.0, 2.0), (4, 5, 6)),
                      custom={"revenue": Moments.of([1.0, 2.0, 4.0])})
    data = summary_to_dict(summary)
    assert data["format"] == FORMAT
    assert summary_from_dict(data) == summary


@pytest.mark.parametrize("garbage", [None, {"format": "other"}, [1, 2],
                                     {"format": FORMAT, "errors": {"events": "x", "trials": 1}},
                                     {"format": FORMAT, "latency": {"bounds": [1.0]}},
                                     {"format": FORMAT, "errors": {"events": 1.5, "trials": 3}}])
def test_a_damaged_baseline_is_refused_with_the_fix(garbage: object) -> None:
    with pytest.raises(InvalidInput, match="record the baseline again"):
        summary_from_dict(garbage)


def test_summaries_add_and_subtract_per_family() -> None:
    a, b = traffic(100, 5), traffic(40, 1)
    assert summary_minus(summary_plus(a, b), b).errors == RateCounts(5, 100)
    assert summary_plus(a, Summary()).errors == RateCounts(5, 100)
    mixed = summary_plus(a, Summary(latency=Histogram((1.0,), (1, 1))))
    assert mixed.latency is not None
    assert mixed.latency.defect()
    assert headline(a)["error_rate"] == 0.05
    assert headline(a)["latency_p99_ms"] > 0


def test_the_default_policy_gives_the_error_rate_a_third_of_alpha() -> None:
    policy = default_policy(MODEL, ENV, available={"error_rate", "latency", "drift",
                                                   "accuracy"})
    assert [s.name for s in policy.signals] == ["error_rate", "latency_p99", "drift", "accuracy"]
    assert policy.alpha == 0.1
    shares = [policy.alpha_for(s) for s in policy.signals]
    assert shares == pytest.approx([0.1 / 3] + [0.1 * 2 / 9] * 3)
    fewer = default_policy(MODEL, ENV, available={"error_rate", "latency"})
    assert fewer.alpha_for(fewer.signals[0]) == pytest.approx(0.1 / 3)
    only_errors = default_policy(MODEL, ENV, available={"error_rate"})
    assert only_errors.alpha_for(only_errors.signals[0]) == pytest.approx(0.1)
    with pytest.raises(InvalidInput, match="none of"):
        default_policy(MODEL, ENV, available={"accuracy"})


def _dep(id_: int, version: int, minute: int, *, end: DeploymentEnd | None = None,
         recorded: bool = False) -> Deployment:
    at = EPOCH + timedelta(minutes=minute)
    record = make_verified_record(at=at + timedelta(minutes=1)) if recorded else None
    if record is not None:
        from dataclasses import replace
        record = replace(record, distribution=summary_to_dict(BASELINE))
    return Deployment(id_, MODEL, ENV, version, at, "alice", "ship", end=end,
                      ended_at=at + timedelta(minutes=5) if end else None, verified=record)


def test_the_reference_baseline_follows_the_documented_rules() -> None:
    v1 = _dep(1, 1, 0, end=DeploymentEnd.SUPERSEDED, recorded=True)
    v2 = _dep(2, 2, 10, end=DeploymentEnd.ROLLED_BACK, recorded=True)
    v1_again = _dep(3, 1, 20)
    assert reference_deployment([v1, v2, v1_again], v1_again) == v1  # own pre-failure baseline
    v3 = _dep(4, 3, 30)
    assert reference_deployment([v1, v2, v3], v3) == v1  # never one that was rolled back from
    first = _dep(5, 1, 0)
    assert reference_deployment([first], first) is None


def test_recent_actions_tell_deploys_from_rollbacks() -> None:
    history = [_dep(1, 1, 0, end=DeploymentEnd.SUPERSEDED),
               _dep(2, 2, 10, end=DeploymentEnd.ROLLED_BACK), _dep(3, 1, 20)]
    actions = recent_actions(history)
    assert [a.kind for a in actions] == [ActionKind.DEPLOY, ActionKind.DEPLOY,
                                         ActionKind.ROLLBACK]
    assert (actions[2].from_version, actions[2].to_version) == (2, 1)


def test_a_verified_deployment_is_watched_in_restarting_segments() -> None:
    dep = _dep(1, 1, 0, recorded=True)
    now = dep.started_at + timedelta(minutes=75)
    assert window_start(dep, now=now, segment=timedelta(minutes=30)) == \
        dep.started_at + timedelta(minutes=60)
    unverified = _dep(2, 2, 0)
    assert window_start(unverified, now=now, segment=timedelta(minutes=30)) == \
        unverified.started_at


def test_a_first_deployment_records_its_own_baseline_then_is_verified() -> None:
    w = WatchedFake(bake_s=60)
    w.world.add_version(tag="v1")
    w.world.deploy(1, verify=False)
    w.source.data[1] = traffic(200, 2)
    seen = w.watch.tick(ENV)
    assert seen[0].assessment.verdict is Verdict.INCONCLUSIVE
    assert "recording v1's own first bake window" in seen[0].assessment.reason
    w.clock.advance(61)
    seen = w.watch.tick(ENV)
    assert seen[0].action == "baseline recorded"
    assert len(w.events("watch.baseline")) == 1
    since = w.clock.now()
    w.clock.advance(30)
    w.source.data[1] = traffic(300, 3)
    assert w.watch.tick(ENV)[0].assessment.verdict is Verdict.HEALTHY
    assert w.source.calls[-1][1] == since  # judged on the window after the recorded one
    w.clock.advance(31)
    assert w.watch.tick(ENV)[0].action == "verified"
    with w.world.registry() as uow:
        record = uow.deployments.live(MODEL, ENV).verified  # type: ignore[union-attr]
    assert record is not None
    assert record.distribution["errors"]["trials"] == 500


def test_a_deployment_verified_by_hand_gets_its_measured_baseline() -> None:
    w = WatchedFake(bake_s=60)
    w.world.add_version(tag="v1")
    w.world.deploy(1, verify=True)  # a person verified it with two numbers
    w.source.data[1] = traffic(500, 5, latency_s=0.02)  # as good as the person stated
    seen = w.watch.tick(ENV)
    assert seen[0].action == "baseline recorded"
    with w.world.registry() as uow:
        record = uow.deployments.live(MODEL, ENV).verified  # type: ignore[union-attr]
    assert record is not None
    assert record.approver == "bob"
    assert record.distribution["errors"] == {"events": 5, "trials": 500}
    assert record.baseline["latency_p95_ms"] == 30  # the person's numbers are kept
    w.clock.advance(5)
    assert w.watch.tick(ENV)[0].baseline_from == (
        "own record of deployment 1 (v1), baseline stated by bob (error_rate=0.01, "
        "latency_p95_ms=30)")
    with w.world.registry() as uow:
        kept = uow.deployments.live(MODEL, ENV).verified  # type: ignore[union-attr]
    assert kept is not None
    assert kept.distribution["stated"]["by"] == "bob"
