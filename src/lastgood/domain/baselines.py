"""Baselines as data: a `Summary` to and from a JSON-ready dict, arithmetic on summaries, and the
headline numbers a verified record shows.

A verified deployment keeps its measured `Summary` in `VerifiedRecord.distribution` (the
`summary_to_dict` shape, tagged with `FORMAT`), so a later deployment, or the same version after a
rollback, is judged against what it really did, not against a few rounded numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.domain.measurements import Histogram, Moments, RateCounts, Summary

FORMAT = "lastgood.summary/1"
"""The `format` tag of a serialised Summary; a different tag is refused, not guessed at."""

_RATES = ("errors", "accuracy")
_HISTOGRAMS = ("latency", "predictions")


def summary_to_dict(summary: Summary) -> dict[str, Any]:
    """The summary as plain JSON types; families without data are left out."""
    out: dict[str, Any] = {"format": FORMAT}
    for name in _RATES:
        rate: RateCounts | None = getattr(summary, name)
        if rate is not None:
            out[name] = {"events": rate.events, "trials": rate.trials}
    for name in _HISTOGRAMS:
        hist: Histogram | None = getattr(summary, name)
        if hist is not None:
            out[name] = {"bounds": list(hist.bounds), "counts": list(hist.counts)}
    if summary.custom:
        out["custom"] = {key: {"count": m.count, "mean": m.mean, "m2": m.m2}
                         for key, m in sorted(summary.custom.items())}
    return out


def summary_from_dict(data: Any) -> Summary:
    """The Summary written by `summary_to_dict`; InvalidInput names what does not fit."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise InvalidInput(f"not a recorded baseline (format {found!r}, expected {FORMAT!r})",
                           fix="let the watch record the baseline again (it does so on its own)")
    try:
        rates = {name: _rate(data[name]) for name in _RATES if name in data}
        hists = {name: _histogram(data[name]) for name in _HISTOGRAMS if name in data}
        custom = {str(k): Moments(int(v["count"]), float(v["mean"]), float(v["m2"]))
                  for k, v in dict(data.get("custom") or {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"the recorded baseline is damaged ({type(exc).__name__}: {exc})",
                           fix="let the watch record the baseline again") from exc
    return Summary(errors=rates.get("errors"), latency=hists.get("latency"),
                   accuracy=rates.get("accuracy"), predictions=hists.get("predictions"),
                   custom=custom)


def _rate(value: Mapping[str, Any]) -> RateCounts:
    return RateCounts(_whole(value["events"]), _whole(value["trials"]))


def _histogram(value: Mapping[str, Any]) -> Histogram:
    return Histogram(tuple(float(b) for b in value["bounds"]),
                     tuple(_whole(c) for c in value["counts"]))


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def summary_minus(current: Summary, earlier: Summary) -> Summary:
    """What happened between two readings of cumulative counters.

    A family missing from `earlier` counts as zero there; one missing from `current` stays
    missing. Bounds that changed between readings leave `current` as it is.
    """
    def rate(now: RateCounts | None, then: RateCounts | None) -> RateCounts | None:
        return now.minus(then) if now is not None and then is not None else now

    def hist(now: Histogram | None, then: Histogram | None) -> Histogram | None:
        if now is None or then is None or now.bounds != then.bounds \
                or len(now.counts) != len(then.counts):
            return now
        return now.minus(then)

    return Summary(errors=rate(current.errors, earlier.errors),
                   latency=hist(current.latency, earlier.latency),
                   accuracy=rate(current.accuracy, earlier.accuracy),
                   predictions=hist(current.predictions, earlier.predictions),
                   custom={key: now.minus(earlier.custom[key]) if key in earlier.custom else now
                           for key, now in current.custom.items()},
                   reproduced=rate(current.reproduced, earlier.reproduced))


def summary_plus(a: Summary, b: Summary) -> Summary:
    """Two summaries merged (several replicas of one version); a family only one has is kept."""
    def rate(x: RateCounts | None, y: RateCounts | None) -> RateCounts | None:
        return x.plus(y) if x is not None and y is not None else (x or y)

    def hist(x: Histogram | None, y: Histogram | None) -> Histogram | None:
        if x is None or y is None:
            return x or y
        if x.bounds != y.bounds or len(x.counts) != len(y.counts):
            return Histogram(x.bounds, (-1,))  # a defect the assessment reports: never mixed
        return x.plus(y)

    custom = dict(a.custom)
    for key, moments in b.custom.items():
        custom[key] = custom[key].plus(moments) if key in custom else moments
    return Summary(errors=rate(a.errors, b.errors), latency=hist(a.latency, b.latency),
                   accuracy=rate(a.accuracy, b.accuracy),
                   predictions=hist(a.predictions, b.predictions), custom=custom,
                   reproduced=rate(a.reproduced, b.reproduced))


def regressed(current: Summary, earlier: Summary) -> str:
    """Why `current` cannot follow `earlier` as a cumulative reading ("" when it can)."""
    pairs: list[tuple[str, Any, Any]] = [
        ("errors", current.errors, earlier.errors),
        ("accuracy", current.accuracy, earlier.accuracy)]
    for name, now, then in pairs:
        if now is not None and then is not None and (now.trials < then.trials
                                                      or now.events < then.events):
            return f"{name} counters went down ({then.trials} -> {now.trials}): a restart"
    for name, now, then in (("latency", current.latency, earlier.latency),
                            ("predictions", current.predictions, earlier.predictions)):
        if now is not None and then is not None and now.bounds == then.bounds and any(
                a < b for a, b in zip(now.counts, then.counts, strict=False)):
            return f"{name} counters went down: a restart"
    for key, now_m in current.custom.items():
        then_m = earlier.custom.get(key)
        if then_m is not None and now_m.count < then_m.count:
            return f"custom.{key} count went down ({then_m.count} -> {now_m.count}): a restart"
    return ""


def samples_of(summary: Summary) -> int:
    """Requests in the summary (0 without error counts)."""
    return summary.errors.trials if summary.errors is not None else 0


def headline(summary: Summary) -> dict[str, float]:
    """The few numbers a person reads on a verified record: rates, latency in ms, counts."""
    out: dict[str, float] = {}
    if summary.errors is not None and summary.errors.trials > 0:
        out["requests"] = float(summary.errors.trials)
        out["error_rate"] = summary.errors.events / summary.errors.trials
    if summary.latency is not None and summary.latency.total > 0 \
            and not summary.latency.defect():
        for q in (0.5, 0.95, 0.99):
            out[f"latency_p{round(q * 100)}_ms"] = summary.latency.quantile(q) * 1000
    if summary.accuracy is not None and summary.accuracy.trials > 0:
        out["labelled"] = float(summary.accuracy.trials)
        out["accuracy"] = summary.accuracy.events / summary.accuracy.trials
    for key, moments in sorted(summary.custom.items()):
        if moments.count > 0:
            out[f"custom.{key}"] = moments.mean
    return {k: round(v, 6) for k, v in out.items() if math.isfinite(v)}


STATED_KEY = "stated"
"""Where a verified record's `distribution` keeps the values a person stated at `verify`."""

_RATE_NAMES = ("error_rate", "accuracy")
_LATENCY_NAME = re.compile(r"^(?:latency_)?p([1-9][0-9]{1,2})_ms$")
_COUNT_NAMES = ("requests", "labelled")
# The rules of `stated_problem`, for the faces that publish them (the API's schema).
RATE_NAMES, LATENCY_NAME, COUNT_NAMES = _RATE_NAMES, _LATENCY_NAME, _COUNT_NAMES


@dataclass(frozen=True, slots=True)
class StatedBaseline:
    """Values a person stated at `lastgood verify`: a fixed reference, not a measurement.

    The next deployment is judged against them from its first request (a one-sample sequential
    test against the stated value, with the policy's tolerance). `latency` maps a quantile
    (0.95) to seconds; `values` keeps every stated number as given (rates, `custom.<metric>`).
    """

    values: Mapping[str, float]
    by: str
    at: datetime | None = None

    @property
    def latency(self) -> dict[float, float]:
        """Stated latency quantiles in seconds, e.g. {0.95: 0.041} from p95_ms=41."""
        found = {}
        for name, value in self.values.items():
            match = _LATENCY_NAME.match(name)
            if match:
                digits = match.group(1)
                found[int(digits) / 10.0 ** len(digits)] = value / 1000.0
        return found

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v:g}" for k, v in sorted(self.values.items()))
        return f"stated by {self.by} ({shown})"


BASELINE_METRICS = ("error_rate", "accuracy", "latency_p50_ms", "latency_p90_ms",
                    "latency_p95_ms", "latency_p99_ms", "requests", "labelled")
"""The names a baseline speaks, everywhere: `verify --metric`, a verified record's headline, the
dashboard, the README. Latency is `latency_pNN_ms` (any quantile; `pNN_ms` is read as it), your
own feedback metrics are `custom.<metric>`."""

_CUSTOM_NAME = re.compile(r"^custom\.[a-z][a-z0-9_]{0,62}$")
_SHORT_LATENCY = re.compile(r"^p([1-9][0-9]{1,2})_ms$")


def baseline_name(name: str) -> str:
    """The vocabulary's spelling of `name` (`p95_ms` -> `latency_p95_ms`); InvalidInput with
    the nearest known name for anything else."""
    if name in BASELINE_METRICS or _CUSTOM_NAME.match(name):
        return name
    short = _SHORT_LATENCY.match(name)
    if short or _LATENCY_NAME.match(name):
        return f"latency_p{short.group(1)}_ms" if short else name
    import difflib

    spellings = [*BASELINE_METRICS, *(n.removeprefix("latency_") for n in BASELINE_METRICS
                                      if n.startswith("latency_"))]
    near = difflib.get_close_matches(name, spellings, n=1, cutoff=0.5)
    guess = baseline_name(near[0]) if near else ""
    if name.startswith("custom.") or not guess:
        hint = ("your own metrics are custom.<name> with a lowercase name of letters, digits "
                "and _, e.g. custom.revenue" if name.startswith("custom.") else
                f"known names: {', '.join(BASELINE_METRICS)}, custom.<metric>")
        raise InvalidInput(f"--metric {name}: unknown metric name", fix=hint)
    raise InvalidInput(f"--metric {name}: unknown metric name; did you mean {guess}?",
                       fix=f"known names: {', '.join(BASELINE_METRICS)}, custom.<metric>")


def baseline_names(values: Mapping[str, float]) -> dict[str, float]:
    """`values` under the vocabulary's names (see `baseline_name`); a name given twice under
    two spellings is refused."""
    out: dict[str, float] = {}
    for name, value in values.items():
        canonical = baseline_name(name)
        if canonical in out:
            raise InvalidInput(f"--metric {canonical} is given twice ({name})",
                               fix="state each metric once")
        out[canonical] = value
    return out


def stated_problem(name: str, value: float) -> str:
    """Why `name=value` cannot be a stated baseline ("" when it can)."""
    if not math.isfinite(value):
        return f"{name}={value} is not a finite number"
    if name in _RATE_NAMES and not 0.0 <= value <= 1.0:
        return f"{name}={value:g} is impossible: a rate lies between 0 and 1"
    if (_LATENCY_NAME.match(name) or name in _COUNT_NAMES) and value < 0:
        return f"{name}={value:g} is impossible: it cannot be negative"
    return ""


def check_stated(values: Mapping[str, float]) -> None:
    """Refuse impossible stated values (accuracy 1.7, a negative latency) with one line."""
    for name, value in values.items():
        problem = stated_problem(name, value)
        if problem:
            raise InvalidInput(f"--metric {problem}",
                               fix="state the value measured, e.g. --metric accuracy=0.95 "
                                   "--metric latency_p95_ms=41 --metric error_rate=0.002")


def stated_record(values: Mapping[str, float], *, by: str, at: datetime) -> dict[str, Any]:
    """The `distribution` entry that marks a record's baseline as stated by a person."""
    return {STATED_KEY: {"values": dict(values), "by": by, "at": at.isoformat()}}


def stated_from(distribution: Mapping[str, Any]) -> StatedBaseline | None:
    """The stated baseline kept in a verified record's `distribution`, or None."""
    data = distribution.get(STATED_KEY) if isinstance(distribution, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(data.get("values"), Mapping):
        return None
    try:
        values = {str(k): float(v) for k, v in data["values"].items()
                  if not stated_problem(str(k), float(v))}
        at = datetime.fromisoformat(data["at"]) if isinstance(data.get("at"), str) else None
    except (TypeError, ValueError):
        return None
    return StatedBaseline(values, str(data.get("by") or "a person"), at) if values else None
