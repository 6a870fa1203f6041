"""Health policy and the pure assessment of a live window against a baseline.

`assess(policy, baseline, window, now)` -> verdict with per-signal evidence. The signals and their
settings live in `signals.py` (re-exported here), one signal's judgement in `judges.py`, the
measured shapes in `measurements.py`, the statistics in `sequential.py` (every test that can
decide is valid at every look), and what to do about a verdict in `decisions.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from lastgood.domain.baselines import StatedBaseline
from lastgood.domain.errors import InvalidInput
from lastgood.domain.judges import inconclusive, judge_safely, judge_stated
from lastgood.domain.measurements import LiveWindow, Summary
from lastgood.domain.sequential import ratio
from lastgood.domain.signals import (
    CUSTOM_PREFIX,
    DEFAULT_TOLERANCE,
    EARLY_KINDS,
    FEEDBACK_KINDS,
    HOST_BOUND_KINDS,
    LATENCY_NAME,
    NATURAL_DIRECTION,
    Direction,
    Mode,
    SignalEvidence,
    SignalKind,
    SignalPolicy,
    Verdict,
    default_signal,
    known_signals,
    signal_kind,
)

__all__ = ["CUSTOM_PREFIX", "DEFAULT_TOLERANCE", "EARLY_KINDS", "FEEDBACK_KINDS", "LATENCY_NAME",
           "NATURAL_DIRECTION", "REPLICA_PREFIX", "Assessment", "Direction", "HealthPolicy",
           "Mode", "SignalEvidence", "SignalKind", "SignalPolicy", "Verdict", "assess",
           "default_signal", "known_signals", "signal_kind"]

_FAMILY = {SignalKind.ERROR_RATE: "errors", SignalKind.LATENCY: "latency",
           SignalKind.ACCURACY: "accuracy", SignalKind.DRIFT: "predictions"}
_UNIT = {SignalKind.ERROR_RATE: "requests", SignalKind.LATENCY: "requests",
         SignalKind.ACCURACY: "labelled answers", SignalKind.DRIFT: "predictions",
         SignalKind.CUSTOM: "values"}


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
        return inconclusive(signal, f"metric source: {reported}")
    reference = _stated_reference(signal, stated)
    if reference is not None:
        value0, q = reference
        assert stated is not None
        held = stated_tolerance(signal)
        return _judge_live(held, window.summary, alpha, lambda live: judge_stated(
            held, value0, q, live, alpha, f"stated by {stated.by}"))
    base = _data(signal, baseline)
    if base is not None and (defect := base.defect()):
        return inconclusive(signal, f"the baseline is garbage: {defect}")
    if base is None or base.samples < signal.min_samples:
        # Nothing to compare with, for as long as this baseline judges: abstain.
        have = f"only {base.samples} {_UNIT[signal.kind]}" if base is not None else "no data"
        return inconclusive(signal, f"the baseline has {have} for {family}"
                                     f"{'' if stated is None else ' and none was stated'}",
                             abstained=True)
    return _judge_live(signal, window.summary, alpha,
                       lambda live: judge_safely(signal, base, live, alpha))


def _judge_live(signal: SignalPolicy, summary: Summary, alpha: float,
                judge: Judge) -> SignalEvidence:
    """The live side's checks, then `judge(live data)`."""
    live, unit = _data(signal, summary), _UNIT[signal.kind]
    waits = signal.kind in FEEDBACK_KINDS  # labels may never come: abstain, never hold back
    if live is None:
        family = _FAMILY.get(signal.kind, signal.name)
        return inconclusive(signal, f"the live window has no {family} data", abstained=waits)
    if defect := live.defect():
        return inconclusive(signal, f"the live window is garbage: {defect}")
    if live.samples >= signal.min_samples:
        return judge(live)
    few = inconclusive(signal, f"the live window has {live.samples} {unit}, "
                                f"{signal.min_samples} needed", samples=live.samples,
                        abstained=waits)
    if signal.kind not in EARLY_KINDS:
        return few
    early = judge(live)
    level = math.log(1 / alpha)
    if early.statistic is not None and early.e_value is not None:
        # The evidence so far rides along: the watch looks sooner while it leans to a regression.
        few = replace(few, statistic=early.statistic, e_value=early.e_value,
                      explanation=f"{few.explanation}; evidence so far {ratio(early.statistic)} "
                                  f"(a regression needs {ratio(level)})")
    if early.verdict not in (Verdict.DEGRADED, Verdict.FAILED):
        return few  # too few to call it healthy
    overwhelming = (early.statistic or 0.0) >= 2 * level
    if signal.kind in HOST_BOUND_KINDS and not (early.verdict is Verdict.FAILED and overwhelming):
        return few
    needs = 2 * level if overwhelming else level
    return replace(early, explanation=(
        f"{early.explanation}; judged before {signal.min_samples} {unit} because the "
        f"evidence is past {ratio(needs)}"))


STATED_LATENCY_RELATIVE = 0.5
"""The least relative tolerance a latency a person stated is judged with (the policy's, when
larger). A stated p99 is one number read off a dashboard at one moment: it carries none of the
spread a measured baseline brings, and a host's latency moves with its load, so a known-good
version (one just rolled back to) must not be flagged because the host is busier than when the
number was read. benchmarks/detection.py ("stated p99", p99 read off five healthy minutes, 10
runs of 30 min each): at the policy's 20 % no healthy stream was rolled back while the host was
as fast as at the reading, but 4/10 were on a host 30 % slower; at 50 % none (0/80); a doubled
p99 is still caught in every run, in a median 5.2 min instead of 71 s."""


def stated_tolerance(signal: SignalPolicy) -> SignalPolicy:
    """`signal` as it judges a stated value: latency with at least STATED_LATENCY_RELATIVE."""
    if signal.kind is not SignalKind.LATENCY or signal.relative >= STATED_LATENCY_RELATIVE:
        return signal
    return replace(signal, relative=STATED_LATENCY_RELATIVE)


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


@dataclass(frozen=True, slots=True)
class LiveCheck:
    """The outcome of comparing a live version with its baseline after a switch."""

    verdict: Verdict  # HEALTHY | DEGRADED | INCONCLUSIVE | FAILED | SKIPPED
    summary: str
    evidence: Mapping[str, Any]

    def __post_init__(self) -> None:  # a verifier may name its verdict by its value
        object.__setattr__(self, "verdict", Verdict(self.verdict))
