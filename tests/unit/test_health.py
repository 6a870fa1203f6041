"""assess(): verdicts with evidence, INCONCLUSIVE on thin or broken data, never an exception."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from lastgood.domain.errors import InvalidInput
from lastgood.domain.health import (
    Direction,
    HealthPolicy,
    SignalKind,
    SignalPolicy,
    Verdict,
    assess,
    default_signal,
    signal_kind,
)
from lastgood.domain.measurements import Histogram, LiveWindow, Moments, RateCounts, Summary
from lastgood.domain.watching import leaning

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=2)
SCORE_BOUNDS = tuple(i / 20 for i in range(1, 20))


def policy(*names: str, **options: object) -> HealthPolicy:
    signals = tuple(default_signal(n, direction=Direction.LOWER_IS_WORSE)
                    if n.startswith("custom.") else default_signal(n) for n in names)
    return HealthPolicy("fraud-detector", "production", signals, **options)  # type: ignore[arg-type]


def latencies(rng: random.Random, n: int, *, slow_share: float = 0.0) -> Histogram:
    return Histogram.of(rng.lognormvariate(-2.3, 0.5) * (4 if rng.random() < slow_share else 1)
                        for _ in range(n))


def scores(rng: random.Random, n: int, *, a: float = 2.0) -> Histogram:
    return Histogram.of((rng.betavariate(a, 5) for _ in range(n)), SCORE_BOUNDS)


def baseline() -> Summary:
    rng = random.Random(1)
    return Summary(errors=RateCounts(180, 18_000), latency=latencies(rng, 18_000),
                   accuracy=RateCounts(1_800, 2_000), predictions=scores(rng, 18_000),
                   custom={"revenue": Moments.of(rng.gauss(10, 2) for _ in range(5_000))})


def healthy_live(n: int = 1_200) -> Summary:
    rng = random.Random(2)
    return Summary(errors=RateCounts(n // 100, n), latency=latencies(rng, n),
                   accuracy=RateCounts(int(0.9 * n / 5), n // 5), predictions=scores(rng, n),
                   custom={"revenue": Moments.of(rng.gauss(10, 2) for _ in range(n))})


def window(summary: Summary, **changes: object) -> LiveWindow:
    return LiveWindow(summary, T0, changes.pop("observed_at", NOW), **changes)  # type: ignore[arg-type]


ALL = ("error_rate", "latency_p99", "accuracy", "drift", "custom.revenue")


def test_a_live_window_like_its_baseline_is_healthy_with_every_field_filled() -> None:
    result = assess(policy(*ALL), baseline(), window(healthy_live()), now=NOW)
    assert result.verdict is Verdict.HEALTHY, result.reason
    for evidence in result.signals:
        assert evidence.verdict is Verdict.HEALTHY
        assert None not in (evidence.baseline, evidence.live, evidence.effect, evidence.statistic,
                            evidence.e_value, evidence.threshold)
        assert evidence.samples > 0
        assert "within tolerance" in evidence.explanation
    assert "all 5 signals" in result.reason


def test_error_rate_regression_is_degraded_then_failed_as_evidence_grows() -> None:
    mild = assess(policy("error_rate"), baseline(), window(Summary(errors=RateCounts(12, 300))),
                  now=NOW)
    assert mild.verdict is Verdict.DEGRADED, mild.reason
    severe = assess(policy("error_rate"), baseline(),
                    window(Summary(errors=RateCounts(60, 1_200))), now=NOW)
    assert severe.verdict is Verdict.FAILED
    evidence = severe.signals[0]
    assert evidence.live == pytest.approx(0.05)
    assert evidence.baseline == pytest.approx(0.01, 0.01)
    assert evidence.effect == pytest.approx(0.04, rel=0.02)
    assert evidence.threshold > 0.01
    assert "error rate 5.00% (60/1200)" in evidence.explanation
    assert evidence.e_value >= 1 / 0.05**2


def test_a_hard_limit_makes_the_verdict_failed() -> None:
    plain = assess(policy("error_rate"), baseline(), window(Summary(errors=RateCounts(12, 300))),
                   now=NOW)
    assert plain.verdict is Verdict.DEGRADED
    capped = HealthPolicy("m", "e", (default_signal("error_rate", limit=0.013),))
    result = assess(capped, baseline(), window(Summary(errors=RateCounts(12, 300))), now=NOW)
    assert result.verdict is Verdict.FAILED
    assert "hard limit" in result.reason


def test_a_heavier_latency_tail_is_a_regression_of_p99_but_not_of_p50() -> None:
    slow = Summary(latency=latencies(random.Random(3), 3_000, slow_share=0.05))
    result = assess(policy("latency_p50", "latency_p99"), baseline(), window(slow), now=NOW)
    p50, p99 = result.signals
    assert p50.verdict is Verdict.HEALTHY
    assert p99.verdict in (Verdict.DEGRADED, Verdict.FAILED)
    assert p99.live > p99.threshold > p99.baseline
    assert "slower where at most 1.0% may be" in p99.explanation


def test_lower_accuracy_is_a_regression() -> None:
    worse = Summary(accuracy=RateCounts(1_700, 2_000))  # 85 % against 90 %
    result = assess(policy("accuracy"), baseline(), window(worse), now=NOW)
    assert result.verdict in (Verdict.DEGRADED, Verdict.FAILED), result.reason
    assert result.signals[0].effect == pytest.approx(0.05, abs=0.005)


def test_prediction_drift_is_a_regression_and_reports_psi_and_ks() -> None:
    drifted = Summary(predictions=scores(random.Random(4), 1_000, a=3.0))
    evidence = assess(policy("drift"), baseline(), window(drifted), now=NOW).signals[0]
    assert evidence.verdict in (Verdict.DEGRADED, Verdict.FAILED)
    assert evidence.effect > 0.2
    assert evidence.p_value < 1e-6
    assert "PSI" in evidence.explanation


def test_custom_metric_honours_its_direction() -> None:
    rng = random.Random(5)
    lower = Summary(custom={"revenue": Moments.of(rng.gauss(8, 2) for _ in range(500))})
    result = assess(policy("custom.revenue"), baseline(), window(lower), now=NOW)
    assert result.verdict in (Verdict.DEGRADED, Verdict.FAILED)
    rising = HealthPolicy("m", "e", (default_signal("custom.revenue"),))  # higher is worse
    assert assess(rising, baseline(), window(lower), now=NOW).verdict is Verdict.HEALTHY


def test_below_min_samples_is_inconclusive_with_the_count() -> None:
    result = assess(policy("latency_p99"), baseline(),
                    window(Summary(latency=latencies(random.Random(3), 40))),
                    now=NOW)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "40 requests, 100 needed" in result.reason
    assert result.signals[0].samples == 40
    errors = assess(policy("error_rate"), baseline(), window(Summary(errors=RateCounts(2, 40))),
                    now=NOW)
    assert errors.verdict is Verdict.INCONCLUSIVE
    assert "40 requests, 100 needed" in errors.reason


def test_the_evidence_before_min_samples_rides_along_and_says_whether_it_leans() -> None:
    pol = policy("error_rate", alpha=0.05)
    two = assess(pol, baseline(), window(Summary(errors=RateCounts(2, 40))), now=NOW)
    none = assess(pol, baseline(), window(Summary(errors=RateCounts(0, 40))), now=NOW)
    assert two.verdict is none.verdict is Verdict.INCONCLUSIVE
    lean, calm = two.signals[0], none.signals[0]
    assert lean.e_value is not None
    assert 1.0 < lean.e_value < 20.0  # leaning, not yet 1/alpha
    assert lean.statistic == pytest.approx(math.log(lean.e_value))
    assert calm.e_value is not None
    assert calm.e_value < 1.0
    assert leaning(two)
    assert "40 requests, 100 needed; evidence so far 3.3:1" in two.reason
    assert "(a regression needs 20:1)" in two.reason
    assert not leaning(none)
    rolled = assess(pol, baseline(), window(Summary(errors=RateCounts(30, 300))), now=NOW)
    assert rolled.verdict in (Verdict.DEGRADED, Verdict.FAILED)
    assert not leaning(rolled)  # decided: nothing left to look for
    labels = assess(policy("accuracy"), baseline(),
                    window(Summary(accuracy=RateCounts(4, 6))), now=NOW)
    assert labels.signals[0].abstained
    assert (labels.signals[0].e_value or 0) > 1.0
    assert not leaning(labels)  # a signal that abstains never sets the pace


def test_overwhelming_evidence_fails_a_version_before_min_samples() -> None:
    for failures, trials in ((9, 40), (6, 6)):
        result = assess(policy("error_rate"), baseline(),
                        window(Summary(errors=RateCounts(failures, trials))), now=NOW)
        assert result.verdict is Verdict.FAILED, result.reason
        assert result.signals[0].samples == trials
        assert "judged before 100 requests because the evidence is past 400:1" in result.reason
    # a drift test is not an exact e-process at a few samples: it waits for min_samples
    drift = assess(policy("drift"), baseline(),
                   window(Summary(predictions=Histogram.of([0.99] * 30))), now=NOW)
    assert drift.verdict is Verdict.INCONCLUSIVE


@pytest.mark.parametrize(("live", "changes", "words"), [
    (healthy_live(), {"problems": {"*": "prometheus: connection refused"}}, "connection refused"),
    (healthy_live(), {"problems": {"errors": "query timed out"}}, "query timed out"),
    (healthy_live(), {"observed_at": NOW - timedelta(seconds=90)}, "no fresh data for 90 s"),
    (Summary(errors=RateCounts(500, 400)), {}, "garbage"),
    (Summary(errors=RateCounts(-5, 400)), {}, "counter reset"),
    (Summary(), {}, "has no errors data"),
])
def test_a_broken_source_is_inconclusive_with_the_reason(live: Summary, changes: dict[str, object],
                                                         words: str) -> None:
    result = assess(policy("error_rate"), baseline(), window(live, **changes), now=NOW)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert words in result.reason


def test_garbage_histograms_and_layout_changes_never_raise() -> None:
    broken = Summary(latency=Histogram((0.1, 0.2), (1, 2)),
                     predictions=Histogram((0.5,), (300, 300)))
    result = assess(policy("latency_p99", "drift"), baseline(), window(broken), now=NOW)
    assert [e.verdict for e in result.signals] == [Verdict.INCONCLUSIVE] * 2
    assert "garbage" in result.signals[0].explanation
    assert "bins differ" in result.signals[1].explanation


def test_a_window_from_the_future_is_inconclusive() -> None:
    early = LiveWindow(healthy_live(), NOW + timedelta(seconds=5), NOW)
    assert assess(policy("error_rate"), baseline(), early, now=NOW).verdict \
        is Verdict.INCONCLUSIVE


def test_a_regression_outranks_a_signal_that_is_still_inconclusive() -> None:
    live = Summary(errors=RateCounts(60, 1_200), accuracy=RateCounts(3, 4))
    result = assess(policy("error_rate", "accuracy"), baseline(), window(live), now=NOW)
    assert result.verdict is Verdict.FAILED
    assert [e.verdict for e in result.signals] == [Verdict.FAILED, Verdict.INCONCLUSIVE]


def test_the_bake_window_makes_a_healthy_deployment_verifiable() -> None:
    short = assess(policy("error_rate", bake_window=timedelta(minutes=1)), baseline(),
                   window(healthy_live()), now=NOW)
    assert short.bake_complete
    assert short.verifiable
    long = assess(policy("error_rate"), baseline(), window(healthy_live()), now=NOW)
    assert not long.bake_complete
    assert not long.verifiable


def test_assess_keeps_false_alarms_under_alpha_at_the_tolerance_edge() -> None:
    """200 streams whose error rate sits exactly at the tolerated rate, judged every 50 requests."""
    rng, pol, base = random.Random(9), policy("error_rate"), baseline()
    tolerated = pol.signals[0].tolerated((180 + 0.5) / 18_001)
    alarms = 0
    for _ in range(200):
        errors = requests = 0
        for _ in range(40):
            errors += sum(rng.random() < tolerated for _ in range(50))
            requests += 50
            live = window(Summary(errors=RateCounts(errors, requests)))
            if assess(pol, base, live, now=NOW).verdict is not Verdict.HEALTHY \
                    and requests >= 100:
                alarms += 1
                break
    assert alarms <= 2 * pol.alpha * 200


def test_alpha_is_split_over_signals_by_weight() -> None:
    pol = HealthPolicy("m", "e", (default_signal("error_rate", weight=3.0),
                                  default_signal("accuracy")), alpha=0.04)
    assert [pol.alpha_for(s) for s in pol.signals] == pytest.approx([0.03, 0.01])


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"name": "latency_p9x"}, "unknown signal"),
    ({"name": "error_rate", "relative": -0.1}, ">= 0"),
    ({"name": "error_rate", "min_samples": 0}, "min_samples"),
    ({"name": "accuracy", "direction": Direction.HIGHER_IS_WORSE}, "always lower_is_worse"),
    ({"name": "drift", "relative": 0.1}, "PSI"),
    ({"name": "error_rate", "limit": 1.5}, "not a rate"),
    ({"name": "latency_p99", "limit": float("inf")}, "impossible"),
])
def test_impossible_signal_settings_are_refused(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        SignalPolicy(**kwargs)  # type: ignore[arg-type]


def test_impossible_policies_are_refused() -> None:
    with pytest.raises(InvalidInput, match="alpha"):
        policy("error_rate", alpha=1.0)
    with pytest.raises(InvalidInput, match="distinct"):
        policy("error_rate", "error_rate")
    with pytest.raises(InvalidInput, match="negative"):
        policy("error_rate", cooldown=timedelta(seconds=-1))


def test_signal_names_map_to_kinds_and_quantiles() -> None:
    assert signal_kind("latency_p999") is SignalKind.LATENCY
    assert default_signal("latency_p999").quantile == pytest.approx(0.999)
    assert default_signal("latency_p50").quantile == pytest.approx(0.5)
    assert signal_kind("custom.queue_depth") is SignalKind.CUSTOM
    assert signal_kind("latency") is None
    assert signal_kind("custom.") is None
    assert not default_signal("accuracy").higher_is_worse


def test_numbers_no_check_foresaw_are_inconclusive_not_a_crash() -> None:
    weird = Summary(latency=Histogram((), (500,)),
                    custom={"revenue": Moments(500, 1e308, 1e308)})
    result = assess(policy("latency_p99", "custom.revenue"), baseline(), window(weird), now=NOW)
    assert [e.verdict for e in result.signals] == [Verdict.INCONCLUSIVE] * 2
    assert "no bucket bounds" in result.signals[0].explanation
