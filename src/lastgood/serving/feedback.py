"""Feedback bodies: `{"request_id": "…", "label": …, "metrics": {"revenue": 12.5, …}}`.

A label scores online accuracy; metrics are a team's own numbers about the answer (revenue,
clicks, time to resolve) and feed the `custom.<metric>` health signals. At least one of the two
is required. Every refusal is an InvalidInput naming the field, raised before anything is
recorded, so a bad body loses nothing and changes nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lastgood.domain.errors import SchemaMismatch

__all__ = ["MAX_METRICS_PER_CALL", "MAX_METRICS_PER_VERSION", "METRIC_NAME", "NO_LABEL",
           "Feedback", "judged", "judged_output", "parse_feedback"]

METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_METRICS_PER_CALL = 16
MAX_METRICS_PER_VERSION = 32  # distinct names a version counts: bounds memory and series
MAX_MAGNITUDE = 1e100  # so sums of squares stay finite
_SHAPE = 'send {"request_id": "…", "label": …} and/or "metrics": {"name": number}'


class _Missing(Enum):
    NO_LABEL = "no label"


NO_LABEL = _Missing.NO_LABEL
"""The `label` of feedback that only carries metrics (a JSON null is a real label)."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """What a caller told about one earlier prediction."""

    request_id: str
    label: Any = NO_LABEL
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.label is not NO_LABEL


def _refuse(where: str, message: str, fix: str = _SHAPE) -> SchemaMismatch:
    return SchemaMismatch(f"{where}: {message}", fix=fix, details={"field": where})


def parse_feedback(payload: Any) -> Feedback:
    """The feedback in a decoded JSON body; InvalidInput naming the field when it does not fit."""
    if not isinstance(payload, dict) or not isinstance(payload.get("request_id"), str):
        raise _refuse("body", 'expected {"request_id": "…", "label": …}',
                      "send the X-Request-Id of a prediction and its true label or metrics")
    if "label" not in payload and "metrics" not in payload:
        raise _refuse("body", "neither a label nor metrics")
    metrics = parse_metrics(payload["metrics"]) if "metrics" in payload else {}
    if "label" not in payload and not metrics:
        raise _refuse("metrics", "no metrics and no label")
    return Feedback(payload["request_id"], payload.get("label", NO_LABEL), metrics)


def parse_metrics(value: Any) -> dict[str, float]:
    """`{"name": number}` with at most MAX_METRICS_PER_CALL finite numbers under sane names."""
    if not isinstance(value, dict):
        raise _refuse("metrics", f"expected an object of numbers, got {type(value).__name__}")
    if len(value) > MAX_METRICS_PER_CALL:
        raise _refuse("metrics", f"{len(value)} metrics, over the limit of "
                                 f"{MAX_METRICS_PER_CALL} per call", "send fewer metrics per call")
    return {name: _metric(name, number) for name, number in value.items()}


def _metric(name: str, number: Any) -> float:
    where = f"metrics.{name}"
    if not METRIC_NAME.match(name):
        raise _refuse(where, "not a metric name",
                      "use 1 to 63 of a-z, 0-9 and _, starting with a letter (e.g. revenue)")
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise _refuse(where, f"{number!r} is not a number", 'send e.g. "revenue": 12.5')
    try:
        value = float(number)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise _refuse(where, f"{str(number)[:40]} is not a finite number of at most "
                             f"{MAX_MAGNITUDE:g}",
                      "send a finite number")
    return value


def judged_output(prediction: Any, wanted: str = "") -> str:
    """The output a label judges in a prediction of several named outputs: `wanted` when it
    has it, else its label output (the first named like a label, else the first holding one
    label: a string, an integer or a boolean, else the first); "" for a one-output prediction.
    """
    if not isinstance(prediction, Mapping) or not prediction:
        return ""
    names = [str(k) for k in prediction]
    if wanted in names:
        return wanted
    named = [n for n in names if "label" in n.lower()]
    scalar = [n for n in names if isinstance(prediction[n], str | int | bool)]
    return (named or scalar or names)[0]


def judged(prediction: Any, label: Any, wanted: str = "") -> tuple[str, Any, Any]:
    """(the output judged, its predicted value, the label's value for it). A label given as
    {output: value} for a prediction of several outputs judges those outputs."""
    if isinstance(label, Mapping) and isinstance(prediction, Mapping) and label \
            and set(map(str, label)) <= set(map(str, prediction)):
        names = sorted(map(str, label))
        return ",".join(names), {n: prediction[n] for n in names}, {str(k): v for k, v in
                                                                    label.items()}
    name = judged_output(prediction, wanted)
    return name, (prediction[name] if name else prediction), label
