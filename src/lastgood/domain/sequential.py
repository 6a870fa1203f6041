"""Tests that stay valid when a live window is checked every few seconds.

Why not a t-test every 5 s: a fixed-sample test at level alpha, repeated on a growing window,
rejects a true null far more often than alpha (checked every 5 s for 30 minutes, a 5 % test raises
a false alarm in most runs). Every test that can *decide* here is an e-process instead: a
non-negative number whose expectation under the null is at most 1 at any stopping time, so by
Ville's inequality P(it ever reaches 1/alpha) <= alpha, however often it is looked at.

- rates (errors per request, wrong answers per label, latencies above a limit): the Bernoulli
  likelihood ratio of a small grid of worse rates against the tolerated rate, mixed with fixed
  weights that sum to 1. Each component is a supermartingale under any rate at or below the
  tolerated one, so the mixture is too (exact, no normal approximation).
- means of custom metrics: the normal-mixture mSPRT (Robbins; Johari et al. 2017), valid as far
  as the sample mean is normal (large counts).
- drift of a binned distribution: a Dirichlet-multinomial mixture likelihood ratio against the
  baseline's bin probabilities, gated by PSI so that tiny, harmless drifts never count.
  The two-sample KS statistic and its asymptotic p-value are reported for people, not used to
  decide: that p-value is a fixed-sample number and repeated looks would spend alpha each time.

Callers split one false-alarm budget over several signals (weighted Bonferroni, see
`HealthPolicy.alpha_for`); the union bound keeps the total at most alpha over the whole life of
one test. Two assumptions are worth knowing: the baseline is taken as known (its own sampling
error is absorbed by the tolerance, so baselines should be large), and a test runs on one
growing window. A watcher that restarts tests on fresh windows spends alpha again per restart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lastgood.domain.errors import InvalidInput

ODDS_STEPS = (0.25, 0.5, 1.0, 1.5, 2.5)
"""Log-odds ratios of the worse rates mixed against the tolerated rate (odds x1.3 .. x12)."""

ODDS_WEIGHTS = (0.2, 0.1, 0.2, 0.3, 0.2)
"""Prior weight of each step. Evidence for a rate accrues fastest under the step nearest the true
one, so the weights sit where regressions that matter are: 0.25 (accuracy 90 % -> 85 % against a
tolerated 88 %), 1 to 1.5 (a latency tail that triples), 2.5 (a version that fails most
requests). benchmarks/detection.py compares choices."""

RatePrior = tuple[tuple[float, float], ...]
"""(log-odds step above the tolerated rate, prior weight) pairs; the weights sum to 1."""

WIDE_PRIOR: RatePrior = tuple(zip(ODDS_STEPS, ODDS_WEIGHTS, strict=True))
"""Accuracy and latency tails: regressions that matter range from a few points to most answers."""

ERROR_PRIOR: RatePrior = ((0.5, 0.2), (1.5, 0.8))
"""Error rates: the regressions that matter start well past the tolerance (odds x4.5, an error
rate that quadruples: 1 % -> 5 % against a tolerated 1.25 %), with a fifth of the weight on odds
x1.6 (an error rate that doubles is still caught, in minutes). Larger rates need no weight of
their own: a version failing most requests passes any threshold within three failures. Against
the wide prior this takes about a second off the median of the 1 % -> 5 % regression and leaves
the false alarms on healthy streams where they were (benchmarks/detection.py)."""
MIXTURE_SD = 0.25
"""Prior sd of the mean shift in the normal mixture, in units of the metric's sd."""

DIRICHLET_CONCENTRATION = 50.0
"""Prior strength of the drift mixture: alternatives differ from the baseline by ~1/sqrt(51)."""

DRIFT_GROUPS = 10
"""Fine bins are merged into about this many groups of equal baseline mass (PSI convention)."""

_MAX_LOG = 700.0  # exp() overflows just above 709


def ratio(log_e: float) -> str:
    """An e-value as odds a person can read: '37:1', '2.1e+05:1'."""
    value = math.exp(min(log_e, _MAX_LOG))
    return f"{value:.2g}:1" if value < 10 else (f"{value:,.0f}:1" if value < 1e5
                                                   else f"{value:.1e}:1")


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha {alpha} is outside (0, 1)", fix="use e.g. alpha = 0.05")


@dataclass(frozen=True, slots=True)
class RateTest:
    """A mixture likelihood ratio of `failures` among `trials` against the tolerated rate."""

    failures: int
    trials: int
    null_rate: float
    alpha: float
    log_e: float
    likely_rate: float  # the alternative that carries most of the evidence

    @property
    def observed_rate(self) -> float:
        return self.failures / self.trials if self.trials else math.nan

    @property
    def e_value(self) -> float:
        return math.exp(min(self.log_e, _MAX_LOG))

    @property
    def rejected(self) -> bool:
        """True once the evidence reaches 1/alpha: the rate is above the tolerated one."""
        return self.log_e >= math.log(1.0 / self.alpha)

    @property
    def explanation(self) -> str:
        verdict = "above" if self.rejected else "not shown above"
        return (f"{self.failures}/{self.trials} = {self.observed_rate:.2%}, {verdict} the "
                f"tolerated {self.null_rate:.2%}: evidence {ratio(self.log_e)} "
                f"(needs {ratio(math.log(1 / self.alpha))})")


def rate_test(failures: int, trials: int, *, null_rate: float, alpha: float,
              prior: RatePrior = WIDE_PRIOR) -> RateTest:
    """Test H0 'the bad-event rate is <= null_rate' from counts; valid at every look.

    The evidence is the `prior`-weighted mixture of the likelihood ratios of worse rates."""
    _check_alpha(alpha)
    if trials < 0 or not 0 <= failures <= trials:
        raise InvalidInput(f"impossible counts {failures}/{trials}",
                           fix="pass 0 <= failures <= trials")
    if null_rate <= 0.0:
        raise InvalidInput(f"tolerated rate {null_rate} must be above 0",
                           fix="give the baseline a rate above 0 or add an absolute tolerance")
    if null_rate >= 1.0:  # every rate is tolerated: no evidence can exist
        return RateTest(failures, trials, null_rate, alpha, 0.0, 1.0)
    logit = math.log(null_rate / (1.0 - null_rate))
    alternatives = [1.0 / (1.0 + math.exp(-(logit + step))) for step, _ in prior]
    logs = [math.log(weight) + failures * math.log(p / null_rate)
            + (trials - failures) * math.log((1.0 - p) / (1.0 - null_rate))
            for p, (_, weight) in zip(alternatives, prior, strict=True)]
    best = max(range(len(logs)), key=logs.__getitem__)
    log_e = _logsumexp(logs)
    return RateTest(failures, trials, null_rate, alpha, log_e, alternatives[best])


@dataclass(frozen=True, slots=True)
class SequentialRate:
    """O(1) running state of a rate test: feed counts as they arrive, test at any time."""

    null_rate: float
    trials: int = 0
    failures: int = 0

    def update(self, successes: int, failures: int) -> SequentialRate:
        """The state after `successes` good and `failures` bad events more."""
        if successes < 0 or failures < 0:
            raise InvalidInput(f"negative counts ({successes}, {failures})",
                               fix="pass the new events since the last update")
        return SequentialRate(self.null_rate, self.trials + successes + failures,
                              self.failures + failures)

    def test(self, *, alpha: float) -> RateTest:
        return rate_test(self.failures, self.trials, null_rate=self.null_rate, alpha=alpha)


@dataclass(frozen=True, slots=True)
class MeanTest:
    """Normal-mixture mSPRT of a mean against the tolerated mean, one-sided (bad side only)."""

    count: int
    mean: float
    null_mean: float
    variance: float
    higher_is_worse: bool
    alpha: float
    log_e: float

    @property
    def e_value(self) -> float:
        return math.exp(min(self.log_e, _MAX_LOG))

    @property
    def rejected(self) -> bool:
        worse = self.mean > self.null_mean if self.higher_is_worse else self.mean < self.null_mean
        return worse and self.log_e >= math.log(1.0 / self.alpha)

    @property
    def explanation(self) -> str:
        side = "above" if self.higher_is_worse else "below"
        verdict = side if self.rejected else f"not shown {side}"
        return (f"mean {self.mean:.4g} over {self.count}, {verdict} the tolerated "
                f"{self.null_mean:.4g}: evidence {ratio(self.log_e)} "
                f"(needs {ratio(math.log(1 / self.alpha))})")


def mean_test(count: int, mean: float, *, null_mean: float, variance: float,
              higher_is_worse: bool, alpha: float) -> MeanTest:
    """Test H0 'the mean is no worse than null_mean' with the normal-mixture mSPRT."""
    _check_alpha(alpha)
    # A constant metric has variance 0; a floor keeps the ratio finite and still decisive.
    var = max(variance, (1e-9 + 1e-6 * abs(null_mean)) ** 2)
    tau2 = var * MIXTURE_SD**2
    shrink = var + count * tau2
    log_e = (0.5 * math.log(var / shrink)
             + count**2 * tau2 * (mean - null_mean) ** 2 / (2.0 * var * shrink))
    if (mean > null_mean) != higher_is_worse:  # on the good side: no evidence of harm
        log_e = min(log_e, 0.0)
    return MeanTest(count, mean, null_mean, var, higher_is_worse, alpha, log_e)


def _smoothed(counts: Sequence[int]) -> list[float]:
    """Bin probabilities with half a count added, so an empty bin never divides by zero."""
    total = sum(counts) + 0.5 * len(counts)
    return [(c + 0.5) / total for c in counts]


def psi(baseline: Sequence[int], live: Sequence[int]) -> float:
    """Population stability index over the same bins (0.1 moderate, 0.25 large, by convention)."""
    b, x = _smoothed(baseline), _smoothed(live)
    return sum((xi - bi) * math.log(xi / bi) for bi, xi in zip(b, x, strict=True))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (two series, each where it converges fast)."""
    if x <= 0:
        return 1.0
    if x < 1.18:
        y = math.exp(-math.pi**2 / (8 * x * x))
        cdf = math.sqrt(2 * math.pi) / x * sum(y ** ((2 * k - 1) ** 2) for k in range(1, 6))
        return min(1.0, max(0.0, 1.0 - cdf))
    terms = ((2.0 if k % 2 else -2.0) * math.exp(-2 * k * k * x * x) for k in range(1, 6))
    return min(1.0, max(0.0, sum(terms)))


@dataclass(frozen=True, slots=True)
class KSTest:
    """Two-sample Kolmogorov-Smirnov on binned data; the p-value is asymptotic, fixed-sample."""

    statistic: float
    p_value: float
    n: int
    m: int


def ks_two_sample(baseline: Sequence[int], live: Sequence[int]) -> KSTest:
    """Largest gap between the two cumulative distributions, with Stephens' small-n correction.

    On binned data the statistic can only shrink, so the p-value errs on the high side.
    """
    n, m = sum(baseline), sum(live)
    if n == 0 or m == 0:
        return KSTest(0.0, 1.0, n, m)
    gap = cb = cl = 0.0
    for b, x in zip(baseline, live, strict=True):
        cb, cl = cb + b / n, cl + x / m
        gap = max(gap, abs(cb - cl))
    root = math.sqrt(n * m / (n + m))
    return KSTest(gap, kolmogorov_sf((root + 0.12 + 0.11 / root) * gap), n, m)


def _groups(baseline: Sequence[int], target: int) -> list[int]:
    """Group index of each fine bin, merging neighbours into ~equal baseline mass."""
    total, groups, mass, current = sum(baseline), [], 0, 0
    for count in baseline:
        groups.append(current)
        mass += count
        if mass * target >= total * (current + 1) and current < target - 1:
            current += 1
    return groups


def _merge(counts: Sequence[int], groups: Sequence[int]) -> list[int]:
    merged = [0] * (max(groups) + 1 if groups else 0)
    for count, group in zip(counts, groups, strict=True):
        merged[group] += count
    return merged


def _dirichlet_log_e(baseline: Sequence[int], live: Sequence[int]) -> float:
    """log of the Dirichlet-multinomial mixture over live counts against the baseline's probs."""
    q, n = _smoothed(baseline), sum(live)
    a = [DIRICHLET_CONCENTRATION * qi for qi in q]
    mixture = (math.lgamma(DIRICHLET_CONCENTRATION) - math.lgamma(DIRICHLET_CONCENTRATION + n)
               + sum(math.lgamma(ai + x) - math.lgamma(ai) for ai, x in zip(a, live, strict=True)))
    return mixture - sum(x * math.log(qi) for qi, x in zip(q, live, strict=True))


@dataclass(frozen=True, slots=True)
class DriftTest:
    """Drift of binned data: PSI (effect), KS (description), mixture e-value (decision).

    PSI from few samples is inflated by noise alone (by about (groups - 1) * (1/n + 1/N)), so
    the tolerance is compared with the PSI left after that expected noise is taken off.
    """

    psi: float
    psi_noise: float
    ks: KSTest
    log_e: float
    samples: int
    psi_tolerance: float
    alpha: float

    @property
    def e_value(self) -> float:
        return math.exp(min(self.log_e, _MAX_LOG))

    @property
    def rejected(self) -> bool:
        """Drift beyond the tolerated PSI, with evidence that it is not noise."""
        return (self.psi - self.psi_noise >= self.psi_tolerance
                and self.log_e >= math.log(1.0 / self.alpha))

    @property
    def explanation(self) -> str:
        size = "beyond" if self.psi - self.psi_noise >= self.psi_tolerance else "within"
        return (f"PSI {self.psi:.3f} ({self.psi - self.psi_noise:.3f} above sampling noise, "
                f"{size} the tolerated {self.psi_tolerance:.3f}) over {self.samples} "
                f"predictions, KS D={self.ks.statistic:.3f} p={self.ks.p_value:.2g}; evidence "
                f"of a change {ratio(self.log_e)} (needs {ratio(math.log(1 / self.alpha))})")


def drift_test(baseline: Sequence[int], live: Sequence[int], *, psi_tolerance: float,
               alpha: float) -> DriftTest:
    """Compare live bin counts with the baseline's, on groups of equal baseline mass."""
    _check_alpha(alpha)
    if len(baseline) != len(live):
        raise InvalidInput("baseline and live bins differ", fix="bin both with the same bounds")
    groups = _groups(baseline, DRIFT_GROUPS)
    base, now = _merge(baseline, groups), _merge(live, groups)
    n, total = sum(now), sum(base)
    noise = (len(base) - 1) * (1 / n + 1 / total) if n and total else math.inf
    return DriftTest(psi(base, now), noise, ks_two_sample(baseline, live),
                     _dirichlet_log_e(base, now), n, psi_tolerance, alpha)
