"""decide(): INCONCLUSIVE never rolls back; modes; anti-flapping and no ping-pong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lastgood.domain.decisions import ActionKind, DecisionKind, RecentAction, decide
from lastgood.domain.health import (
    Assessment,
    HealthPolicy,
    Mode,
    SignalEvidence,
    Verdict,
    default_signal,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def policy(mode: Mode = Mode.AUTO) -> HealthPolicy:
    return HealthPolicy("fraud-detector", "production", (default_signal("error_rate"),),
                        mode=mode, cooldown=timedelta(minutes=30))


def assessment(verdict: Verdict) -> Assessment:
    evidence = SignalEvidence("error_rate", verdict, f"error rate looks {verdict}")
    return Assessment(verdict, (evidence,), f"error_rate: error rate looks {verdict}", NOW,
                      bake_complete=False)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


ROLLED_BACK = RecentAction(ActionKind.ROLLBACK, ago(10), from_version=4, to_version=3)
HISTORIES = [(), (ROLLED_BACK,), (RecentAction(ActionKind.PAUSE, ago(1), 4),),
             (RecentAction(ActionKind.DEPLOY, ago(1), 3, 4),)]


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("history", HISTORIES)
def test_inconclusive_never_rolls_back(mode: Mode, history: tuple[RecentAction, ...]) -> None:
    decision = decide(assessment(Verdict.INCONCLUSIVE), policy(mode), history, NOW)
    assert decision.kind is DecisionKind.RECORD
    assert "inconclusive" in decision.reason


def test_healthy_needs_nothing() -> None:
    assert decide(assessment(Verdict.HEALTHY), policy(), (), NOW).kind is DecisionKind.NONE


@pytest.mark.parametrize("verdict", [Verdict.DEGRADED, Verdict.FAILED])
@pytest.mark.parametrize(("mode", "kind"), [(Mode.AUTO, DecisionKind.ROLLBACK),
                                            (Mode.PAUSE, DecisionKind.PAUSE),
                                            (Mode.OBSERVE, DecisionKind.RECORD)])
def test_a_regression_follows_the_mode(verdict: Verdict, mode: Mode, kind: DecisionKind) -> None:
    decision = decide(assessment(verdict), policy(mode), (), NOW)
    assert decision.kind is kind
    assert "error rate looks" in decision.reason
    assert decision.verdict is verdict


def test_no_second_rollback_within_the_cooldown() -> None:
    decision = decide(assessment(Verdict.DEGRADED), policy(), (ROLLED_BACK,), NOW)
    assert decision.kind is DecisionKind.PAUSE
    assert "already ran" in decision.reason
    assert "a human decides" in decision.reason


def test_a_rollback_after_the_cooldown_is_allowed_again() -> None:
    old = RecentAction(ActionKind.ROLLBACK, ago(31), from_version=4, to_version=3)
    decision = decide(assessment(Verdict.DEGRADED), policy(), (old,), NOW)
    assert decision.kind is DecisionKind.ROLLBACK
    assert decision.avoid_versions == frozenset()


def test_a_new_deploy_after_a_rollback_may_be_rolled_back_but_never_to_the_failed_version() -> None:
    history = (ROLLED_BACK, RecentAction(ActionKind.DEPLOY, ago(5), from_version=3, to_version=5))
    decision = decide(assessment(Verdict.FAILED), policy(), history, NOW)
    assert decision.kind is DecisionKind.ROLLBACK
    assert decision.avoid_versions == frozenset({4})  # no ping-pong back to 4


def test_a_regression_already_handed_to_a_human_is_only_recorded() -> None:
    paused = RecentAction(ActionKind.PAUSE, ago(2), from_version=4)
    decision = decide(assessment(Verdict.DEGRADED), policy(Mode.PAUSE), (paused,), NOW)
    assert decision.kind is DecisionKind.RECORD
    assert "already handed to a human" in decision.reason


def test_actions_in_the_future_or_long_ago_do_not_count() -> None:
    future = RecentAction(ActionKind.ROLLBACK, NOW + timedelta(minutes=1), from_version=4)
    decision = decide(assessment(Verdict.DEGRADED), policy(), (future,), NOW)
    assert decision.kind is DecisionKind.ROLLBACK
