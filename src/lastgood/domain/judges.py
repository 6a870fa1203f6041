"""One signal judged against its reference: the error or accuracy rate, a latency quantile,
prediction drift, or a custom metric's mean, each against a measured baseline or a value a person
stated. Every function returns a SignalEvidence and never raises on bad numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.domain.measurements import Histogram, Moments, RateCounts
from lastgood.domain.sequential import (
    ERROR_PRIOR,
    WIDE_PRIOR,
    drift_test,
    mean_test,
    rate_test,
    ratio,
)
from lastgood.domain.signals import SignalEvidence, SignalKind, SignalPolicy, Verdict


def judge_stated(signal: SignalPolicy, value0: float, q: float, live: Any, alpha: float,
                  origin: str) -> SignalEvidence:
    """One-sample sequential test of the live data against a stated value."""
    try:
        if signal.kind is SignalKind.LATENCY:
            return _latency_evidence(signal, q, value0, live, alpha, origin)
        if signal.kind is SignalKind.CUSTOM:
            return _custom_evidence(signal, value0, live.variance, live, alpha, origin)
        return _rate_evidence(signal, value0, live, alpha, origin)
    except (InvalidInput, ValueError, ArithmeticError) as exc:
        return inconclusive(signal, f"the data could not be judged ({type(exc).__name__}: {exc})")


def judge_safely(signal: SignalPolicy, base: Any, live: Any, alpha: float) -> SignalEvidence:
    try:
        return _JUDGES[signal.kind](signal, base, live, alpha)
    except (InvalidInput, ValueError, ArithmeticError) as exc:
        # Safety rule 8/9: numbers no check above foresaw must not stop the watcher or roll back.
        return inconclusive(signal, f"the data could not be judged ({type(exc).__name__}: {exc})")


def inconclusive(signal: SignalPolicy, why: str, *, samples: int = 0,
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
    prior = ERROR_PRIOR if signal.kind is SignalKind.ERROR_RATE else WIDE_PRIOR

    def test(bound: float) -> Any:
        bad_rate = min(max(bound if high else 1 - bound, 1e-12), 1.0)
        bad = live.events if high else live.trials - live.events
        return rate_test(bad, live.trials, null_rate=bad_rate, alpha=alpha, prior=prior)

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
        return inconclusive(signal, "baseline and live latency buckets differ: re-record the "
                                     "baseline with the gateway's buckets")
    return _latency_evidence(signal, signal.quantile, base.quantile(signal.quantile), live,
                             alpha, "")


def _latency_evidence(signal: SignalPolicy, q: float, value0: float, live: Histogram,
                      alpha: float, origin: str) -> SignalEvidence:
    label = signal.name.removeprefix("latency_") if q == signal.quantile else f"p{q * 100:g}"
    tolerated = signal.tolerated(value0)
    cut = live.above(tolerated)
    if cut is None:
        return inconclusive(signal, f"tolerated {label} {_secs(tolerated)} is beyond the "
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
        return inconclusive(signal, "baseline and live prediction bins differ: re-record the "
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
