"""Health policy and the pure assessment of a live window against a baseline.

`assess(policy, baseline, window, now)` -> verdict with per-signal evidence. The measured shapes
live in `measurements.py`, the statistics in `sequential.py` (every test that can decide is valid
at every look), and what to do about a verdict in `decisions.py`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from lastgood.domain.baselines import StatedBaseline
from lastgood.domain.errors import InvalidInput
from lastgood.domain.measurements import Histogram, LiveWindow, Moments, RateCounts, Summary
from lastgood.domain.sequential import drift_test, mean_test, rate_test, ratio


class Mode(StrEnum):
    """What a DEGRADED or FAILED verdict leads to."""

    AUTO = "auto"  # roll back to the last verified version
    PAUSE = "pause"  # alert a human and wait
    OBSERVE = "observe"  # record only


class Direction(StrEnum):
    """Which way a signal gets worse."""

    HIGHER_IS_WORSE = "higher_is_worse"
    LOWER_IS_WORSE = "lower_is_worse"


class SignalKind(StrEnum):
    """The family a signal name belongs to; it says which test judges it."""

    ERROR_RATE = "error_rate"  # errors among requests
    LATENCY = "latency"  # latency_pNN: a quantile of request latency, seconds
    ACCURACY = "accuracy"  # correct answers among labelled feedback
    DRIFT = "drift"  # prediction distribution against the baseline's (PSI)
    CUSTOM = "custom"  # custom.<metric>: the mean of a team's own metric


class Verdict(StrEnum):
    """The outcome of one assessment, mildest first."""

    HEALTHY = "HEALTHY"  # no signal shows a regression beyond its tolerance
    INCONCLUSIVE = "INCONCLUSIVE"  # too few samples or a source gap: never acts by itself
    DEGRADED = "DEGRADED"  # a sequential test rejects "no regression beyond tolerance"
    FAILED = "FAILED"  # beyond a hard limit, or overwhelming evidence (e >= 1/alpha^2)

    @property
    def severity(self) -> int:
        return _SEVERITY.index(self)


_SEVERITY = (Verdict.HEALTHY, Verdict.INCONCLUSIVE, Verdict.DEGRADED, Verdict.FAILED)

LATENCY_NAME = re.compile(r"^latency_p([1-9][0-9]{1,2})$")
CUSTOM_PREFIX = "custom."
NATURAL_DIRECTION = {
    SignalKind.ERROR_RATE: Direction.HIGHER_IS_WORSE,
    SignalKind.LATENCY: Direction.HIGHER_IS_WORSE,
    SignalKind.ACCURACY: Direction.LOWER_IS_WORSE,
    SignalKind.DRIFT: Direction.HIGHER_IS_WORSE,
}
DEFAULT_TOLERANCE = {  # (relative, absolute) used when a policy file names neither
    SignalKind.ERROR_RATE: (0.25, 0.002),
    SignalKind.LATENCY: (0.2, 0.0),
    SignalKind.ACCURACY: (0.0, 0.02),
    SignalKind.DRIFT: (0.0, 0.2),
    SignalKind.CUSTOM: (0.1, 0.0),
}
_FAMILY = {SignalKind.ERROR_RATE: "errors", SignalKind.LATENCY: "latency",
           SignalKind.ACCURACY: "accuracy", SignalKind.DRIFT: "predictions"}
_UNIT = {SignalKind.ERROR_RATE: "requests", SignalKind.LATENCY: "requests",
         SignalKind.ACCURACY: "labelled answers", SignalKind.DRIFT: "predictions",
         SignalKind.CUSTOM: "values"}


_PLAIN_KINDS = {k.value: k for k in (SignalKind.ERROR_RATE, SignalKind.ACCURACY, SignalKind.DRIFT)}


def signal_kind(name: str) -> SignalKind | None:
    """The kind of a signal name, or None for a name lastgood does not know."""
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return SignalKind.CUSTOM
    if LATENCY_NAME.match(name):
        return SignalKind.LATENCY
    return _PLAIN_KINDS.get(name)


def known_signals() -> str:
    """The signal names a policy may use, for error messages."""
    return "error_rate, latency_p50, latency_p95, latency_p99, accuracy, drift, custom.<metric>"


@dataclass(frozen=True, slots=True)
class SignalPolicy:
    """How one signal is judged. Tolerated value = baseline +/- max(relative*|baseline|, absolute).

    For drift, `absolute` is the tolerated PSI. `limit` is a hard limit in the signal's unit
    (rate, seconds, PSI, metric value): evidence of crossing it makes the verdict FAILED.
    `weight` is this signal's share of the policy's alpha (Bonferroni with weights).
    """

    name: str
    relative: float = 0.0
    absolute: float = 0.0
    min_samples: int = 100
    limit: float | None = None
    direction: Direction | None = None  # None: the signal's natural direction
    weight: float = 1.0
    kind: SignalKind = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem, fix = self.problem()
        if problem:
            raise InvalidInput(f"signal {self.name}: {problem}", fix=fix)
        object.__setattr__(self, "kind", signal_kind(self.name))  # checked above: never None

    def problem(self) -> tuple[str, str]:
        """(what is wrong, the fix), or ("", "") when the settings make sense."""
        kind = signal_kind(self.name)
        if kind is None:
            return f"unknown signal {self.name!r}", f"use one of {known_signals()}"
        numbers = (self.relative, self.absolute, self.weight)
        if any(not math.isfinite(v) or v < 0 for v in numbers):
            return "tolerances and weight must be finite and >= 0", "e.g. relative = 0.2"
        if (self.limit is not None and not math.isfinite(self.limit)) or \
                (kind is not SignalKind.CUSTOM and (self.limit or 0.0) < 0):
            return f"limit {self.limit} is impossible", "use a finite limit >= 0"
        if self.min_samples < 1 or self.weight == 0:
            return "min_samples and weight must be at least 1 and above 0", "e.g. min_samples = 100"
        natural = NATURAL_DIRECTION.get(kind)
        if natural and self.direction not in (None, natural):
            return f"{self.name} is always {natural}", "remove direction"
        if kind is SignalKind.DRIFT and self.relative:
            return "drift tolerance is a PSI value", "use absolute = 0.2 instead of relative"
        if kind in (SignalKind.ERROR_RATE, SignalKind.ACCURACY) and self.limit is not None \
                and not 0 < self.limit < 1:
            return f"limit {self.limit} is not a rate in (0, 1)", "e.g. limit = 0.2"
        return "", ""

    @property
    def higher_is_worse(self) -> bool:
        direction = self.direction or NATURAL_DIRECTION.get(self.kind, Direction.HIGHER_IS_WORSE)
        return direction is Direction.HIGHER_IS_WORSE

    @property
    def quantile(self) -> float:
        """For latency_pNN: NN as a fraction (p99 -> 0.99, p999 -> 0.999)."""
        match = LATENCY_NAME.match(self.name)
        digits = match.group(1) if match else "5"
        return int(digits) / 10.0 ** len(digits)

    def tolerated(self, baseline: float) -> float:
        """The worst value still accepted, given the baseline value."""
        margin = max(self.relative * abs(baseline), self.absolute)
        return baseline + margin if self.higher_is_worse else baseline - margin


def default_signal(name: str, **overrides: Any) -> SignalPolicy:
    """A signal with lastgood's default tolerance for its kind, changed by `overrides`."""
    kind = signal_kind(name)
    relative, absolute = DEFAULT_TOLERANCE[kind] if kind else (0.0, 0.0)
    return SignalPolicy(**{"name": name, "relative": relative, "absolute": absolute, **overrides})


EARLY_KINDS = frozenset({SignalKind.ERROR_RATE, SignalKind.ACCURACY, SignalKind.LATENCY})
"""Kinds whose test is an exact e-process from the first sample (a Bernoulli mixture). Before a
live window reaches min_samples they may still say FAILED, on overwhelming evidence only: a
version that fails every request goes back after a handful of them, not after 100. The price is
small: by Ville's inequality a healthy stream reaches 1/alpha^2 with probability <= alpha^2."""

FEEDBACK_KINDS = frozenset({SignalKind.ACCURACY, SignalKind.CUSTOM})
"""Kinds fed by feedback (labels), which may never arrive. Without enough of it such a signal
abstains: INCONCLUSIVE for itself, it never holds the other signals' verdict back."""


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Per (model, env): the signals watched and what a regression leads to.

    `alpha` is the false-alarm budget: the chance that a deployment whose signals all sit exactly
    at their tolerance is ever called DEGRADED, over its whole life, however often it is checked.
    """

    model: str
    env: str
    signals: tuple[SignalPolicy, ...]
    mode: Mode = Mode.AUTO
    bake_window: timedelta = timedelta(minutes=10)
    cooldown: timedelta = timedelta(minutes=30)
    alpha: float = 0.05
    max_staleness: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        names = [s.name for s in self.signals]
        if not 0.0 < self.alpha < 1.0:
            raise InvalidInput(f"alpha {self.alpha} is outside (0, 1)", fix="use e.g. 0.05")
        if not names or len(set(names)) != len(names):
            raise InvalidInput(f"policy {self.model}/{self.env} needs distinct signals",
                               fix="list each signal once")
        if min(self.bake_window, self.cooldown, self.max_staleness) < timedelta(0):
            raise InvalidInput("durations must not be negative", fix="e.g. cooldown = 30m")

    def alpha_for(self, signal: SignalPolicy) -> float:
        """This signal's share of the false-alarm budget (weighted Bonferroni)."""
        return self.alpha * signal.weight / sum(s.weight for s in self.signals)


@dataclass(frozen=True, slots=True)
class SignalEvidence:
    """Why one signal got its verdict, in numbers and one line a person can read at 3 a.m."""

    signal: str
    verdict: Verdict
    explanation: str
    baseline: float | None = None  # baseline value (rate, seconds, mean; PSI: 0)
    live: float | None = None  # live value in the same unit
    effect: float | None = None  # live - baseline, positive = worse (drift: the PSI)
    statistic: float | None = None  # log e-value (drift: KS D)
    e_value: float | None = None  # likelihood ratio against "no regression beyond tolerance"
    p_value: float | None = None  # drift only: KS asymptotic, fixed-sample, for description
    samples: int = 0
    threshold: float | None = None  # the tolerated value (drift: the tolerated PSI)
    abstained: bool = False  # INCONCLUSIVE for want of data that may never come: not counted


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict over every signal: the worst one wins, INCONCLUSIVE ranking below DEGRADED."""

    verdict: Verdict
    signals: tuple[SignalEvidence, ...]
    reason: str
    at: datetime
    bake_complete: bool

    @property
    def verifiable(self) -> bool:
        """Healthy after a full bake window: the deployment may be marked verified."""
        return self.verdict is Verdict.HEALTHY and self.bake_complete


class _Data(Protocol):
    @property
    def samples(self) -> int: ...

    def defect(self) -> str: ...


def assess(policy: HealthPolicy, baseline: Summary, window: LiveWindow, *,
           now: datetime, stated: StatedBaseline | None = None) -> Assessment:
    """Judge every signal of `window` against `baseline` (or against the values a person
    `stated`, for the signals they name); never raises on bad data.

    A signal that abstains (no reference for it, or feedback that has not come) is left out of
    the verdict; when every signal abstains the verdict is INCONCLUSIVE.
    """
    blanket = _window_problem(policy, window, now)
    evidence = tuple(_judge(s, baseline, window, policy.alpha_for(s), blanket, stated)
                     for s in policy.signals)
    counted = [e for e in evidence if not e.abstained]
    verdict = max((e.verdict for e in counted), key=lambda v: v.severity,
                  default=Verdict.INCONCLUSIVE)
    worst = [f"{e.signal}: {e.explanation}" for e in counted or evidence if e.verdict is verdict]
    judged = "judged " if len(counted) < len(evidence) else ""
    reason = (f"all {len(counted)} {judged}signals within tolerance"
              if verdict is Verdict.HEALTHY else "; ".join(worst))
    left_out = [f"{e.signal} not judged ({e.explanation})" for e in evidence
                if e.abstained and counted]
    replicas = [f"{key}: {why}" for key, why in sorted(window.problems.items())
                if key.startswith(REPLICA_PREFIX)]
    reason = "; ".join([reason, *left_out, *replicas])
    return Assessment(verdict, evidence, reason, now,
                      now - window.started_at >= policy.bake_window)


REPLICA_PREFIX = "replica "
"""A window problem keyed `replica <url>` concerns one replica only: it is left out of the
window (INCONCLUSIVE for itself) and named in the reason; the other replicas are judged."""


def _window_problem(policy: HealthPolicy, window: LiveWindow, now: datetime) -> str:
    if window.started_at > now:
        return f"window starts in the future ({window.started_at.isoformat()}): check clocks"
    age = now - window.observed_at
    if age > policy.max_staleness:
        return (f"no fresh data for {age.total_seconds():.0f} s "
                f"(allowed {policy.max_staleness.total_seconds():.0f} s)")
    return window.problems.get("*", "")


def _data(signal: SignalPolicy, summary: Summary) -> _Data | None:
    kind = signal.kind
    if kind is SignalKind.CUSTOM:
        return summary.custom.get(signal.name.removeprefix(CUSTOM_PREFIX))
    families: dict[SignalKind, _Data | None] = {
        SignalKind.ERROR_RATE: summary.errors, SignalKind.LATENCY: summary.latency,
        SignalKind.ACCURACY: summary.accuracy, SignalKind.DRIFT: summary.predictions}
    return families[kind]


Judge = Callable[[Any], SignalEvidence]


def _judge(signal: SignalPolicy, baseline: Summary, window: LiveWindow, alpha: float,
           blanket: str, stated: StatedBaseline | None) -> SignalEvidence:
    family = _FAMILY.get(signal.kind, signal.name)
    reported = blanket or window.problems.get(family) or window.problems.get(signal.name)
    if reported:
        return _inconclusive(signal, f"metric source: {reported}")
    reference = _stated_reference(signal, stated)
    if reference is not None:
        value0, q = reference
        assert stated is not None
        return _judge_live(signal, window.summary, alpha, lambda live: _judge_stated(
            signal, value0, q, live, alpha, f"stated by {stated.by}"))
    base = _data(signal, baseline)
    if base is not None and (defect := base.defect()):
        return _inconclusive(signal, f"the baseline is garbage: {defect}")
    if base is None or base.samples < signal.min_samples:
        # Nothing to compare with, for as long as this baseline judges: abstain.
        have = f"only {base.samples} {_UNIT[signal.kind]}" if base is not None else "no data"
        return _inconclusive(signal, f"the baseline has {have} for {family}"
                                     f"{'' if stated is None else ' and none was stated'}",
                             abstained=True)
    return _judge_live(signal, window.summary, alpha,
                       lambda live: _judge_safely(signal, base, live, alpha))


def _judge_live(signal: SignalPolicy, summary: Summary, alpha: float,
                judge: Judge) -> SignalEvidence:
    """The live side's checks, then `judge(live data)`."""
    live, unit = _data(signal, summary), _UNIT[signal.kind]
    waits = signal.kind in FEEDBACK_KINDS  # labels may never come: abstain, never hold back
    if live is None:
        family = _FAMILY.get(signal.kind, signal.name)
        return _inconclusive(signal, f"the live window has no {family} data", abstained=waits)
    if defect := live.defect():
        return _inconclusive(signal, f"the live window is garbage: {defect}")
    if live.samples >= signal.min_samples:
        return judge(live)
    few = _inconclusive(signal, f"the live window has {live.samples} {unit}, "
                                f"{signal.min_samples} needed", samples=live.samples,
                        abstained=waits)
    if signal.kind not in EARLY_KINDS:
        return few
    early = judge(live)
    overwhelming = (early.statistic or 0.0) >= 2 * math.log(1 / alpha)
    if early.verdict is not Verdict.FAILED or not overwhelming:
        return few
    return replace(early, explanation=(
        f"{early.explanation}; judged before {signal.min_samples} {unit} because the "
        f"evidence is past {ratio(2 * math.log(1 / alpha))}"))


def _stated_reference(signal: SignalPolicy,
                      stated: StatedBaseline | None) -> tuple[float, float] | None:
    """(stated value, quantile) that judges `signal`, or None. A latency quantile that was not
    stated is judged at the stated one nearest to it (p99 policy, p95_ms=41 stated: p95)."""
    if stated is None or signal.kind is SignalKind.DRIFT:
        return None
    if signal.kind is SignalKind.LATENCY:
        found = stated.latency
        if not found:
            return None
        q = min(found, key=lambda k: (abs(k - signal.quantile), -k))
        return found[q], q
    value = stated.values.get(signal.name)
    return None if value is None else (value, 0.0)


def _judge_stated(signal: SignalPolicy, value0: float, q: float, live: Any, alpha: float,
                  origin: str) -> SignalEvidence:
    """One-sample sequential test of the live data against a stated value."""
    try:
        if signal.kind is SignalKind.LATENCY:
            return _latency_evidence(signal, q, value0, live, alpha, origin)
        if signal.kind is SignalKind.CUSTOM:
            return _custom_evidence(signal, value0, live.variance, live, alpha, origin)
        return _rate_evidence(signal, value0, live, alpha, origin)
    except (InvalidInput, ValueError, ArithmeticError) as exc:
        return _inconclusive(signal, f"the data could not be judged ({type(exc).__name__}: {exc})")


def _judge_safely(signal: SignalPolicy, base: Any, live: Any, alpha: float) -> SignalEvidence:
    try:
        return _JUDGES[signal.kind](signal, base, live, alpha)
    except (InvalidInput, ValueError, ArithmeticError) as exc:
        # Safety rule 8/9: numbers no check above foresaw must not stop the watcher or roll back.
        return _inconclusive(signal, f"the data could not be judged ({type(exc).__name__}: {exc})")


def _inconclusive(signal: SignalPolicy, why: str, *, samples: int = 0,
                  abstained: bool = False) -> SignalEvidence:
    return SignalEvidence(signal.name, Verdict.INCONCLUSIVE, why, samples=samples,
                          abstained=abstained)


def _verdict(log_e: float, alpha: float, *, rejected: bool, hard: bool) -> tuple[Verdict, str]:
    """FAILED past a hard limit or at overwhelming evidence (1/alpha^2); DEGRADED at 1/alpha."""
    if hard:
        return Verdict.FAILED, "REGRESSION past the hard limit"
    if rejected and log_e >= 2 * math.log(1 / alpha):
        return Verdict.FAILED, "REGRESSION, overwhelming evidence"
    return (Verdict.DEGRADED, "REGRESSION") if rejected else (Verdict.HEALTHY, "within tolerance")


def _judge_rate(signal: SignalPolicy, base: RateCounts, live: RateCounts,
                alpha: float) -> SignalEvidence:
    value0 = (base.events + 0.5) / (base.trials + 1)  # never exactly 0 or 1
    return _rate_evidence(signal, value0, live, alpha, "")


def _rate_evidence(signal: SignalPolicy, value0: float, live: RateCounts, alpha: float,
                   origin: str) -> SignalEvidence:
    tolerated = signal.tolerated(value0)
    high = signal.higher_is_worse

    def test(bound: float) -> Any:
        bad_rate = min(max(bound if high else 1 - bound, 1e-12), 1.0)
        bad = live.events if high else live.trials - live.events
        return rate_test(bad, live.trials, null_rate=bad_rate, alpha=alpha)

    main = test(tolerated)
    hard = signal.limit is not None and test(signal.limit).rejected
    verdict, status = _verdict(main.log_e, alpha, rejected=main.rejected, hard=hard)
    value = live.events / live.trials
    name = "error rate" if signal.kind is SignalKind.ERROR_RATE else "accuracy"
    text = (f"{name} {value:.2%} ({live.events}/{live.trials}) vs baseline {value0:.2%}"
            f"{f' {origin}' if origin else ''}, "
            f"tolerated {tolerated:.2%}: {status}; evidence "
            f"{ratio(main.log_e)} (needs {ratio(math.log(1 / alpha))})")
    return SignalEvidence(signal.name, verdict, text, value0, value,
                          (value - value0) if high else (value0 - value), main.log_e,
                          main.e_value, None, live.trials, tolerated)


def _secs(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _judge_latency(signal: SignalPolicy, base: Histogram, live: Histogram,
                   alpha: float) -> SignalEvidence:
    if base.bounds != live.bounds:
        return _inconclusive(signal, "baseline and live latency buckets differ: re-record the "
                                     "baseline with the gateway's buckets")
    return _latency_evidence(signal, signal.quantile, base.quantile(signal.quantile), live,
                             alpha, "")


def _latency_evidence(signal: SignalPolicy, q: float, value0: float, live: Histogram,
                      alpha: float, origin: str) -> SignalEvidence:
    label = signal.name.removeprefix("latency_") if q == signal.quantile else f"p{q * 100:g}"
    tolerated = signal.tolerated(value0)
    cut = live.above(tolerated)
    if cut is None:
        return _inconclusive(signal, f"tolerated {label} {_secs(tolerated)} is beyond the "
                                     f"largest bucket {_secs(live.bounds[-1])}: add buckets")
    edge, slow = cut
    main = rate_test(slow, live.total, null_rate=1 - q, alpha=alpha)
    hard_cut = live.above(signal.limit) if signal.limit is not None else None
    hard = hard_cut is not None and rate_test(hard_cut[1], live.total, null_rate=1 - q,
                                              alpha=alpha).rejected
    verdict, status = _verdict(main.log_e, alpha, rejected=main.rejected, hard=hard)
    value = live.quantile(q)
    text = (f"{label} latency {_secs(value)} vs baseline {_secs(value0)}"
            f"{f' {origin}' if origin else ''}, tolerated "
            f"{_secs(edge)}: {slow}/{live.total} requests ({slow / live.total:.1%}) slower "
            f"where at most {1 - q:.1%} may be: {status}; evidence {ratio(main.log_e)} "
            f"(needs {ratio(math.log(1 / alpha))})")
    return SignalEvidence(signal.name, verdict, text, value0, value, value - value0,
                          main.log_e, main.e_value, None, live.total, edge)


def _judge_drift(signal: SignalPolicy, base: Histogram, live: Histogram,
                 alpha: float) -> SignalEvidence:
    if base.bounds != live.bounds:
        return _inconclusive(signal, "baseline and live prediction bins differ: re-record the "
                                     "baseline with the same bins")
    test = drift_test(base.counts, live.counts, psi_tolerance=signal.absolute, alpha=alpha)
    hard = signal.limit is not None and test.psi >= signal.limit and test.rejected
    verdict, status = _verdict(test.log_e, alpha, rejected=test.rejected, hard=hard)
    text = f"prediction drift {status}: {test.explanation}"
    return SignalEvidence(signal.name, verdict, text, 0.0, test.psi, test.psi,
                          test.ks.statistic, test.e_value, test.ks.p_value, test.samples,
                          signal.absolute)


def _judge_custom(signal: SignalPolicy, base: Moments, live: Moments,
                  alpha: float) -> SignalEvidence:
    return _custom_evidence(signal, base.mean, base.variance, live, alpha, "")


def _custom_evidence(signal: SignalPolicy, mean0: float, variance0: float, live: Moments,
                     alpha: float, origin: str) -> SignalEvidence:
    tolerated, high = signal.tolerated(mean0), signal.higher_is_worse
    variance = max(variance0, live.variance)

    def test(bound: float) -> Any:
        return mean_test(live.count, live.mean, null_mean=bound, variance=variance,
                         higher_is_worse=high, alpha=alpha)

    main = test(tolerated)
    hard = signal.limit is not None and test(signal.limit).rejected
    verdict, status = _verdict(main.log_e, alpha, rejected=main.rejected, hard=hard)
    text = (f"{signal.name} mean {live.mean:.4g} vs baseline {mean0:.4g}"
            f"{f' {origin}' if origin else ''}, tolerated "
            f"{tolerated:.4g}: {status}; "
            f"evidence {ratio(main.log_e)} (needs {ratio(math.log(1 / alpha))})")
    effect = live.mean - mean0 if high else mean0 - live.mean
    return SignalEvidence(signal.name, verdict, text, mean0, live.mean, effect,
                          main.log_e, main.e_value, None, live.count, tolerated)


_JUDGES: Mapping[SignalKind, Callable[[SignalPolicy, Any, Any, float], SignalEvidence]] = {
    SignalKind.ERROR_RATE: _judge_rate,
    SignalKind.ACCURACY: _judge_rate,
    SignalKind.LATENCY: _judge_latency,
    SignalKind.DRIFT: _judge_drift,
    SignalKind.CUSTOM: _judge_custom,
}
