"""The sequential tests: valid under continuous monitoring, and sensitive to clear regressions.

The null-stream tests look at the evidence after every small batch, many times per stream, and
count streams that ever reject. Ville's inequality bounds that by alpha; the tests allow 2 x alpha
for the sampling error of 200 seeded streams (deterministic).
"""

from __future__ import annotations

import math
import random

import pytest

from lastgood.domain.errors import InvalidInput
from lastgood.domain.measurements import Moments
from lastgood.domain.sequential import (
    ERROR_PRIOR,
    SequentialRate,
    drift_test,
    kolmogorov_sf,
    ks_two_sample,
    mean_test,
    psi,
    rate_test,
    ratio,
)

ALPHA = 0.05
STREAMS = 200


def bernoulli_stream_rejects(rng: random.Random, *, rate: float, null_rate: float,
                             looks: int, batch: int) -> int | None:
    """Trials seen when the test first rejects, or None if it never does."""
    state = SequentialRate(null_rate)
    for _ in range(looks):
        bad = sum(rng.random() < rate for _ in range(batch))
        state = state.update(batch - bad, bad)
        if state.test(alpha=ALPHA).rejected:
            return state.trials
    return None


def test_rate_test_keeps_false_alarms_under_alpha_at_the_null_boundary() -> None:
    rng = random.Random(20240501)
    alarms = sum(bernoulli_stream_rejects(rng, rate=0.02, null_rate=0.02, looks=100, batch=20)
                 is not None for _ in range(STREAMS))
    assert alarms <= 2 * ALPHA * STREAMS


def error_prior_alarms(rng: random.Random, *, rate: float, null_rate: float,
                       requests: int) -> bool:
    """Whether the error-rate test ever rejects when it is looked at after every request."""
    failures = 0
    for trials in range(1, requests + 1):
        if rng.random() < rate:  # only an error can raise the evidence: look right after it
            failures += 1
            if rate_test(failures, trials, null_rate=null_rate, alpha=ALPHA,
                         prior=ERROR_PRIOR).rejected:
                return True
    return False


def test_error_prior_keeps_false_alarms_under_alpha_when_looked_at_after_every_request() -> None:
    # The watch looks five times a second while the evidence leans: as good as every request.
    rng = random.Random(515)
    edge = sum(error_prior_alarms(rng, rate=0.0125, null_rate=0.0125, requests=3000)
               for _ in range(STREAMS))
    below = sum(error_prior_alarms(rng, rate=0.01, null_rate=0.0125, requests=3000)
                for _ in range(STREAMS))
    assert edge <= 2 * ALPHA * STREAMS
    assert below <= ALPHA * STREAMS
    # ... and the same looks on a test that is not an e-process (a one-sided z test at 5 %
    # after every error) alarm far more often: the assertion above can fail.
    naive = sum(_z_test_alarms(rng, rate=0.0125, null_rate=0.0125, requests=3000)
                for _ in range(STREAMS))
    assert naive > 4 * ALPHA * STREAMS


def _z_test_alarms(rng: random.Random, *, rate: float, null_rate: float, requests: int) -> bool:
    failures = 0
    for trials in range(1, requests + 1):
        if rng.random() < rate:
            failures += 1
            z = (failures - trials * null_rate) / math.sqrt(trials * null_rate * (1 - null_rate))
            if z > 1.645:
                return True
    return False


def test_rate_test_never_alarms_when_the_rate_is_better_than_tolerated() -> None:
    rng = random.Random(7)
    alarms = sum(bernoulli_stream_rejects(rng, rate=0.01, null_rate=0.0125, looks=100, batch=20)
                 is not None for _ in range(50))
    assert alarms == 0


def test_rate_test_detects_one_to_five_percent_errors_quickly() -> None:
    rng = random.Random(11)
    found = [bernoulli_stream_rejects(rng, rate=0.05, null_rate=0.0125, looks=50, batch=20)
             for _ in range(50)]
    assert all(n is not None for n in found)
    assert sorted(n or 0 for n in found)[25] <= 400  # median within 400 requests


def test_rate_test_result_explains_itself() -> None:
    result = rate_test(40, 800, null_rate=0.0125, alpha=ALPHA)
    assert result.rejected
    assert result.observed_rate == pytest.approx(0.05)
    assert result.e_value > 1 / ALPHA
    assert result.likely_rate > result.null_rate
    assert "40/800" in result.explanation
    assert "above" in result.explanation


def test_no_evidence_without_data_and_when_everything_is_tolerated() -> None:
    assert rate_test(0, 0, null_rate=0.01, alpha=ALPHA).log_e == pytest.approx(0.0, abs=1e-12)
    everything = rate_test(10, 10, null_rate=1.0, alpha=ALPHA)
    assert not everything.rejected


@pytest.mark.parametrize(("failures", "trials", "null_rate", "alpha"), [
    (5, 4, 0.01, 0.05), (-1, 4, 0.01, 0.05), (0, 10, 0.0, 0.05), (0, 10, 0.01, 1.0),
    (0, 10, 0.01, 0.0)])
def test_rate_test_refuses_impossible_arguments(failures: int, trials: int, null_rate: float,
                                                alpha: float) -> None:
    with pytest.raises(InvalidInput):
        rate_test(failures, trials, null_rate=null_rate, alpha=alpha)


def test_sequential_rate_accumulates_in_constant_time_and_matches_counts() -> None:
    state = SequentialRate(0.02).update(95, 5).update(190, 10)
    assert (state.trials, state.failures) == (300, 15)
    assert state.test(alpha=ALPHA) == rate_test(15, 300, null_rate=0.02, alpha=ALPHA)
    with pytest.raises(InvalidInput):
        state.update(-1, 0)


def normal_stream_rejects(rng: random.Random, *, shift: float, looks: int, batch: int) -> bool:
    seen = Moments(0, 0.0, 0.0)
    for _ in range(looks):
        seen = seen.plus(Moments.of(rng.gauss(10.0 + shift, 2.0) for _ in range(batch)))
        result = mean_test(seen.count, seen.mean, null_mean=10.0, variance=4.0,
                           higher_is_worse=True, alpha=ALPHA)
        if result.rejected:
            return True
    return False


def test_mean_test_keeps_false_alarms_under_alpha_over_many_looks() -> None:
    rng = random.Random(3)
    alarms = sum(normal_stream_rejects(rng, shift=0.0, looks=50, batch=10)
                 for _ in range(STREAMS))
    assert alarms <= 2 * ALPHA * STREAMS


def test_mean_test_detects_a_shift_of_half_a_standard_deviation() -> None:
    rng = random.Random(4)
    assert all(normal_stream_rejects(rng, shift=1.0, looks=50, batch=10) for _ in range(20))


def test_mean_test_finds_no_evidence_on_the_good_side() -> None:
    better = mean_test(500, 8.0, null_mean=10.0, variance=4.0, higher_is_worse=True, alpha=ALPHA)
    assert not better.rejected
    assert better.log_e <= 0.0
    worse = mean_test(500, 8.0, null_mean=10.0, variance=4.0, higher_is_worse=False, alpha=ALPHA)
    assert worse.rejected
    assert "below" in worse.explanation


def test_mean_test_of_a_constant_metric_stays_finite() -> None:
    result = mean_test(100, 1.5, null_mean=1.0, variance=0.0, higher_is_worse=True, alpha=ALPHA)
    assert result.rejected
    assert math.isfinite(result.log_e)


PROBS = (0.05, 0.1, 0.15, 0.2, 0.2, 0.15, 0.1, 0.05)
BASELINE = tuple(int(p * 100_000) for p in PROBS)


def multinomial(rng: random.Random, probs: tuple[float, ...], n: int) -> list[int]:
    counts = [0] * len(probs)
    for index in rng.choices(range(len(probs)), weights=probs, k=n):
        counts[index] += 1
    return counts


def drift_stream_rejects(rng: random.Random, probs: tuple[float, ...], *, tolerance: float,
                         looks: int, batch: int) -> bool:
    live = [0] * len(probs)
    for _ in range(looks):
        live = [a + b for a, b in zip(live, multinomial(rng, probs, batch), strict=True)]
        result = drift_test(BASELINE, live, psi_tolerance=tolerance, alpha=ALPHA)
        if result.rejected if tolerance else result.e_value >= 1 / ALPHA:
            return True
    return False


def test_drift_evidence_keeps_false_alarms_under_alpha_even_without_the_psi_gate() -> None:
    rng = random.Random(5)
    alarms = sum(drift_stream_rejects(rng, PROBS, tolerance=0.0, looks=40, batch=25)
                 for _ in range(STREAMS))
    assert alarms <= 2 * ALPHA * STREAMS


def test_drift_detects_a_shifted_distribution() -> None:
    shifted = (0.02, 0.04, 0.08, 0.14, 0.2, 0.22, 0.18, 0.12)
    rng = random.Random(6)
    assert all(drift_stream_rejects(rng, shifted, tolerance=0.2, looks=40, batch=25)
               for _ in range(20))
    result = drift_test(BASELINE, multinomial(rng, shifted, 1000), psi_tolerance=0.2,
                        alpha=ALPHA)
    assert result.psi > 0.2
    assert result.ks.p_value < 1e-6
    assert "PSI" in result.explanation
    assert "KS" in result.explanation


def test_drift_within_the_psi_tolerance_is_not_rejected_however_sure() -> None:
    slight = (0.045, 0.1, 0.15, 0.2, 0.2, 0.15, 0.1, 0.055)
    live = [int(p * 1_000_000) for p in slight]
    result = drift_test(BASELINE, live, psi_tolerance=0.2, alpha=ALPHA)
    assert result.e_value > 1 / ALPHA  # certainly different ...
    assert not result.rejected  # ... but not by a harmful amount


def test_psi_is_zero_for_the_same_shape_and_grows_with_the_shift() -> None:
    assert psi(BASELINE, [c // 10 for c in BASELINE]) == pytest.approx(0.0, abs=1e-4)
    assert psi([5000, 5000], [8000, 2000]) == pytest.approx(0.3 * math.log(4), rel=1e-3)


def test_ks_two_sample_matches_the_textbook_values() -> None:
    same = ks_two_sample(BASELINE, [c // 100 for c in BASELINE])
    assert same.statistic == pytest.approx(0.0, abs=1e-3)
    assert same.p_value > 0.99
    apart = ks_two_sample([100, 0], [0, 100])
    assert apart.statistic == 1.0
    assert apart.p_value < 1e-10
    assert ks_two_sample([0, 0], [1, 2]).p_value == 1.0


def test_kolmogorov_survival_function_is_right_and_continuous() -> None:
    assert kolmogorov_sf(1.3581) == pytest.approx(0.05, abs=1e-3)
    assert kolmogorov_sf(1.6276) == pytest.approx(0.01, abs=5e-4)
    assert kolmogorov_sf(1.1799) == pytest.approx(kolmogorov_sf(1.1801), abs=1e-3)
    assert kolmogorov_sf(0.0) == 1.0


def test_ratio_reads_like_odds() -> None:
    assert ratio(math.log(37)) == "37:1"
    assert ratio(math.log(2.5)) == "2.5:1"
    assert ratio(20.0) == "4.9e+08:1"
