"""The signals a health policy watches: their kinds and names, how one is judged (its tolerance,
limit, direction and share of alpha), the verdicts, and the evidence behind one signal's verdict.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lastgood.domain.errors import InvalidInput


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
    SKIPPED = "SKIPPED"  # a live check had nothing to judge against; never an assessment's outcome

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
live window reaches min_samples they may already say DEGRADED or FAILED, never HEALTHY: Ville's
inequality bounds the chance of ever reaching 1/alpha by alpha whatever the count, so waiting for
100 requests bought no safety and cost ~1 s of every detection at 10 requests/s (a version that
fails every request goes back after two or three of them). min_samples still decides when a
signal has seen enough to be called HEALTHY, and gates the approximate tests (drift, means)."""

HOST_BOUND_KINDS = frozenset({SignalKind.LATENCY})
"""Early kinds that measure the host as much as the version: a few slow first requests after a
switch, or a busy machine, are real exceedances that a longer window puts in proportion. Before
min_samples they may only say FAILED, and only on overwhelming evidence (1/alpha squared)."""

FEEDBACK_KINDS = frozenset({SignalKind.ACCURACY, SignalKind.CUSTOM})
"""Kinds fed by feedback (labels), which may never arrive. Without enough of it such a signal
abstains: INCONCLUSIVE for itself, it never holds the other signals' verdict back."""


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
