"""Request evidence per version: live counters, a latency reservoir, sampled requests, feedback
(labels and custom metrics), and the Prometheus series that expose them.

Only model outcomes are counted as requests and errors here; bad input is counted apart
(`rejected`) so it can never drive a rollback.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram

from lastgood.domain.errors import PreconditionFailed
from lastgood.domain.measurements import LATENCY_BOUNDS, Moments, quantile_ms
from lastgood.serving.feedback import MAX_METRICS_PER_VERSION, Feedback, judged
from lastgood.serving.loading import outputs_match
from lastgood.serving.replay import Outcome

__all__ = ["EvidenceOptions", "Recorder", "VersionStats"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 10.0,
                 100.0, 1000.0)
OTHER = "<other>"


@dataclass(frozen=True, slots=True)
class EvidenceOptions:
    """How much evidence a replica keeps in memory per version."""

    sample_rate: float = 0.01  # share of successful requests kept; errors are always kept
    buffer_size: int = 256  # sampled requests kept per version (a ring buffer)
    latency_reservoir: int = 2048  # latency samples kept per version (uniform reservoir)
    feedback_memory: int = 10_000  # recent request ids remembered for feedback
    max_classes: int = 50  # distinct predicted values counted per version before "<other>"
    accuracy_output: str = ""  # the output labels judge in a model of several ("": its label)


class _Metrics:
    """The Prometheus series of one app, in its own registry (no global state)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("model", "version")
        self.requests = PromCounter("lastgood_requests", "Predictions served (model outcomes)",
                                    labels, registry=registry)
        self.errors = PromCounter("lastgood_errors", "Predictions that failed in the model",
                                  labels, registry=registry)
        self.rejected = PromCounter("lastgood_rejected_requests",
                                    "Requests refused for bad input (never model errors)",
                                    ("model", "reason"), registry=registry)
        self.latency = PromHistogram("lastgood_request_latency_seconds",
                                     "Time to predict, per model and version", labels,
                                     buckets=LATENCY_BUCKETS, registry=registry)
        self.classes = PromCounter("lastgood_predictions", "Predicted classes or values",
                                   (*labels, "value"), registry=registry)
        self.values = PromHistogram("lastgood_prediction_value", "Predicted numeric values",
                                    labels, buckets=VALUE_BUCKETS, registry=registry)
        self.errors_input = PromCounter(
            "lastgood_errors_input", "Model errors the way back reproduced on replay: the "
            "input's, not the version's", labels, registry=registry)
        self.errors_replayed = PromCounter(
            "lastgood_errors_replayed", "Model errors replayed on the way back (its warm "
            "standby)", labels, registry=registry)
        self.errors_pending = PromGauge("lastgood_errors_pending",
                                        "Model errors waiting for their replay", labels,
                                        registry=registry)
        self.labels = PromCounter("lastgood_feedback_labels", "Answers scored by a label "
                                  "sent as feedback", labels, registry=registry)
        self.correct = PromCounter("lastgood_feedback_correct", "Answers a feedback label "
                                   "found right (accuracy = correct / labels)", labels,
                                   registry=registry)
        custom = (*labels, "metric")
        self.custom_count = PromCounter("lastgood_custom_metric_count",
                                        "Custom metric values received in feedback", custom,
                                        registry=registry)
        # A gauge, not a counter: a metric may be negative (a refund), so its sum may go down.
        self.custom_sum = PromGauge("lastgood_custom_metric_sum",
                                    "Sum of the custom metric values received", custom,
                                    registry=registry)
        self.custom_sum_squares = PromCounter("lastgood_custom_metric_sum_squares",
                                              "Sum of the squared custom metric values", custom,
                                              registry=registry)


class VersionStats:
    """Live counters and sampled evidence of one served version."""

    def __init__(self, model: str, version: int, options: EvidenceOptions, metrics: _Metrics,
                 rng: random.Random) -> None:
        self.model, self.version, self._options, self._rng = model, version, options, rng
        self.requests = self.errors = self.records = 0
        # Errors judged against the way back (serving.blame): waiting for their replay,
        # replayed, and reproduced there (the input's); the versions replayed on.
        self.errors_pending = self.errors_replayed = self.errors_input = 0
        self.replayed_on: set[int] = set()
        self.feedback_total = self.feedback_correct = 0
        self.feedback_output = ""  # the output the labels judged ("" for a one-output model)
        self.latencies: list[float] = []
        self._seen = 0
        self.classes: Counter[str] = Counter()
        # For the watch: fine latency bins (the domain's) and value bins, exact and cumulative,
        # and when counting started, so a window since a switch can be cut exactly.
        self.latency_counts = [0] * (len(LATENCY_BOUNDS) + 1)
        self.value_counts = [0] * (len(VALUE_BUCKETS) + 1)
        self.counting_since: datetime | None = None
        self.samples: deque[dict[str, Any]] = deque(maxlen=max(options.buffer_size, 1))
        self.custom: dict[str, Moments] = {}
        self._metrics = metrics
        key = (model, str(version))
        self._requests, self._errors = metrics.requests.labels(*key), metrics.errors.labels(*key)
        self._latency, self._values = metrics.latency.labels(*key), metrics.values.labels(*key)
        self._classes_metric = metrics.classes
        self._class_children: dict[str, Any] = {}

    def count_labels(self, scored: int, right: int) -> None:
        """Feed the Prometheus feedback counters (the watch reads `feedback_*` directly)."""
        key = (self.model, str(self.version))
        if scored:
            self._metrics.labels.labels(*key).inc(scored)
        if right:
            self._metrics.correct.labels(*key).inc(right)

    def observe_latency(self, seconds: float) -> None:
        """Keep a uniform sample of latencies (Algorithm R) and feed the histogram."""
        self._latency.observe(seconds)
        self.latency_counts[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self._seen += 1
        size = self._options.latency_reservoir
        if len(self.latencies) < size:
            self.latencies.append(seconds)
        else:
            slot = self._rng.randrange(self._seen)
            if slot < size:
                self.latencies[slot] = seconds

    def success(self, predictions: Sequence[Any], seconds: float) -> None:
        self.requests += 1
        self.records += len(predictions)
        self._requests.inc()
        self.observe_latency(seconds)
        for value in predictions:
            self._count(value)

    def failure(self, seconds: float) -> None:
        self.requests += 1
        self.errors += 1
        self._requests.inc()
        self._errors.inc()
        self.observe_latency(seconds)

    def replay_settled(self, outcome: Outcome | None, on: int | None) -> None:
        """A pending failure's replay ended: reproduced (RAISED), answered, or not judged."""
        self.errors_pending -= 1
        self._metrics.errors_pending.labels(self.model, str(self.version)).dec()
        if outcome not in (Outcome.ANSWERED, Outcome.RAISED):
            return
        self.errors_replayed += 1
        self._metrics.errors_replayed.labels(self.model, str(self.version)).inc()
        if on is not None:
            self.replayed_on.add(on)
        if outcome is Outcome.RAISED:
            self.errors_input += 1
            self._metrics.errors_input.labels(self.model, str(self.version)).inc()

    def custom_room(self, names: Sequence[str]) -> str:
        """Why these metric names cannot be counted here ("" when they can)."""
        new = sorted(set(names) - set(self.custom))
        if len(self.custom) + len(new) <= MAX_METRICS_PER_VERSION:
            return ""
        return (f"version {self.version} already counts {len(self.custom)} custom metrics; "
                f"{', '.join(new)} would pass the limit of {MAX_METRICS_PER_VERSION}")

    def add_custom(self, metrics: Mapping[str, float]) -> None:
        """Count one value of each metric (checked beforehand with `custom_room`)."""
        for name, value in metrics.items():
            self.custom[name] = self.custom.get(name, Moments(0, 0.0, 0.0)).plus(
                Moments(1, value, 0.0))
            key = (self.model, str(self.version), name)
            self._metrics.custom_count.labels(*key).inc()
            self._metrics.custom_sum.labels(*key).inc(value)
            self._metrics.custom_sum_squares.labels(*key).inc(value * value)

    def _count(self, value: Any) -> None:
        if isinstance(value, float):
            self._values.observe(value)
            self.value_counts[bisect_left(VALUE_BUCKETS, value)] += 1
            return
        label = str(value) if isinstance(value, str | int | bool) else "<structured>"
        if label not in self.classes and len(self.classes) >= self._options.max_classes:
            label = OTHER
        self.classes[label] += 1
        child = self._class_children.get(label)
        if child is None:
            child = self._classes_metric.labels(self.model, str(self.version), label)
            self._class_children[label] = child
        child.inc()

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready numbers (latency quantiles in ms)."""
        latencies = list(self.latencies)

        def quantile(q: float) -> float | None:
            return quantile_ms(latencies, q)

        return {
            "version": self.version, "requests": self.requests, "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else None,
            "errors_pending": self.errors_pending, "errors_replayed": self.errors_replayed,
            "errors_input": self.errors_input, "replayed_on": sorted(self.replayed_on),
            "records": self.records,
            "latency_ms": {"p50": quantile(0.5), "p90": quantile(0.9), "p95": quantile(0.95),
                           "p99": quantile(0.99), "samples": len(latencies)},
            "predictions": dict(self.classes.most_common()),
            "feedback": {"total": self.feedback_total, "correct": self.feedback_correct,
                         "accuracy": (self.feedback_correct / self.feedback_total
                                      if self.feedback_total else None),
                         "output": self.feedback_output or None},
            "counting_since": self.counting_since.isoformat() if self.counting_since else None,
            "latency_histogram": {"bounds": list(LATENCY_BOUNDS),
                                  "counts": list(self.latency_counts)},
            "value_histogram": {"bounds": list(VALUE_BUCKETS), "counts": list(self.value_counts)},
            "custom": {name: {"count": m.count, "mean": m.mean, "m2": m.m2}
                       for name, m in sorted(self.custom.items())},
        }


@dataclass(frozen=True, slots=True)
class Remembered:
    """A recent prediction, kept so feedback can be scored against it."""

    model: str
    version: int
    predictions: tuple[Any, ...]


class Recorder:
    """Every version's evidence in one replica; called on the event loop only."""

    def __init__(self, *, options: EvidenceOptions = EvidenceOptions(),
                 registry: CollectorRegistry | None = None, seed: int | None = None) -> None:
        self.options = options
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics = _Metrics(self.registry)
        self._rng = random.Random(seed)
        self._stats: dict[tuple[str, int], VersionStats] = {}
        self._recent: OrderedDict[str, Remembered] = OrderedDict()

    def stats(self, model: str, version: int) -> VersionStats:
        """The (created on first use) counters of one version."""
        key = (model, version)
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = VersionStats(model, version, self.options, self._metrics,
                                                    self._rng)
        return found

    def success(self, model: str, version: int, *, request_id: str, records: Sequence[Any],
                predictions: Sequence[Any], seconds: float, at: datetime) -> None:
        """A prediction was served: count it, maybe sample it, remember it for feedback."""
        stats = self.stats(model, version)
        stats.counting_since = stats.counting_since or at
        stats.success(predictions, seconds)
        self._recent[request_id] = Remembered(model, version, tuple(predictions))
        if len(self._recent) > self.options.feedback_memory:
            self._recent.popitem(last=False)
        if self._rng.random() < self.options.sample_rate:
            stats.samples.append({"at": at.isoformat(), "request_id": request_id,
                                  "records": list(records), "predictions": list(predictions),
                                  "latency_ms": round(seconds * 1000, 3)})

    def failure(self, model: str, version: int, *, request_id: str, records: Sequence[Any],
                error: str, seconds: float, at: datetime) -> None:
        """The model failed on valid input: a model error, always sampled."""
        stats = self.stats(model, version)
        stats.counting_since = stats.counting_since or at
        stats.failure(seconds)
        stats.samples.append({"at": at.isoformat(), "request_id": request_id,
                              "records": list(records), "error": error,
                              "latency_ms": round(seconds * 1000, 3)})

    def replay_pending(self, model: str, version: int) -> None:
        """A failure of `version` waits for its replay on the way back (serving.blame)."""
        self.stats(model, version).errors_pending += 1
        self._metrics.errors_pending.labels(model, str(version)).inc()

    def replay_settled(self, model: str, version: int, outcome: Outcome | None, *,
                       on: int | None) -> None:
        """The replay of a failure of `version` on version `on` ended with `outcome` (None:
        it was not replayed; the failure stays the version's)."""
        self.stats(model, version).replay_settled(outcome, on)

    def rejected(self, model: str, reason: str) -> None:
        """Bad input: counted apart, never as a model error."""
        self._metrics.rejected.labels(model, reason).inc()

    def feedback(self, model: str, told: Feedback) -> dict[str, Any] | None:
        """Score a label and count metrics against a recent prediction; None when not known.

        A request id is scored once (it is forgotten after), so retried feedback cannot inflate
        the counts: send its label and metrics in one call. A list label scores a multi-record
        request record by record. Everything is checked before anything is counted.
        """
        remembered = self._recent.get(told.request_id)
        if remembered is None or remembered.model != model:
            return None
        stats = self.stats(model, remembered.version)
        scored = self._score(remembered, told.label) if told.labelled else ("", [])
        output, correct = scored
        if room := stats.custom_room(list(told.metrics)):  # well formed; the names sent before
            raise PreconditionFailed(room, fix="reuse the metric names already sent, or fewer "
                                               "names", details={"field": "metrics"})
        del self._recent[told.request_id]
        stats.feedback_total += len(correct)
        stats.feedback_correct += sum(correct)
        stats.count_labels(len(correct), sum(correct))
        stats.feedback_output = output or stats.feedback_output
        stats.add_custom(told.metrics)
        out: dict[str, Any] = {"request_id": told.request_id, "version": remembered.version}
        if told.labelled:
            out["correct"] = correct if len(correct) > 1 else correct[0]
            if output:
                out["output"] = output
        if told.metrics:
            out["metrics"] = sorted(told.metrics)
        return out

    def _score(self, remembered: Remembered, label: Any) -> tuple[str, list[bool]]:
        """The output judged and whether each prediction's matched its label (nothing counted
        yet). A prediction of several outputs is judged on one (see feedback.judged)."""
        labels = label if isinstance(label, list) and len(remembered.predictions) > 1 else [label]
        if len(labels) != len(remembered.predictions):  # well formed; the request decides
            count = len(remembered.predictions)
            raise PreconditionFailed(f"label: the request had {count} predictions",
                                     fix=f"send a list of {count} labels, one per record",
                                     details={"field": "label"})
        wanted = self.options.accuracy_output
        found = [judged(p, t, wanted) for p, t in zip(remembered.predictions, labels, strict=True)]
        return (found[0][0] if found else "",
                [outputs_match(value, told, 1e-9) for _, value, told in found])

    def versions(self, model: str) -> list[VersionStats]:
        """Counters of every version of `model` this replica served, newest first."""
        found = [s for (m, _), s in self._stats.items() if m == model]
        return sorted(found, key=lambda s: s.version, reverse=True)

    def samples(self, model: str, version: int) -> dict[str, Any]:
        """What the rollback archive takes in: the version's counters and sampled requests."""
        stats = self._stats.get((model, version))
        if stats is None:
            return {"model": model, "version": version, "counters": None, "samples": []}
        return {"model": model, "version": version, "counters": stats.snapshot(),
                "samples": list(stats.samples)}
