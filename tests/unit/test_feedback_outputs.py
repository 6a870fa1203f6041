"""Feedback labels on a model of several outputs judge one output: its label output by default
(an ONNX classifier's `label`, not its probabilities), another when configured, or the outputs a
label names; the evidence says which. One-output models are judged as before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lastgood.domain.errors import PreconditionFailed
from lastgood.serving.evidence import EvidenceOptions, Recorder
from lastgood.serving.feedback import Feedback, judged_output

AT = datetime(2026, 1, 1, tzinfo=UTC)
ONNX = [{"label": 1, "probabilities": [0.2, 0.8]}, {"label": 0, "probabilities": [0.9, 0.1]}]


def served(recorder: Recorder, request_id: str, predictions: list[object]) -> None:
    recorder.success("m", 1, request_id=request_id, records=[{}] * len(predictions),
                     predictions=predictions, seconds=0.001, at=AT)


def test_the_label_output_is_judged_by_default_and_named() -> None:
    recorder = Recorder(seed=1)
    served(recorder, "r1", ONNX)
    told = recorder.feedback("m", Feedback("r1", [1, 1]))
    assert told == {"request_id": "r1", "version": 1, "correct": [True, False], "output": "label"}
    feedback = recorder.stats("m", 1).snapshot()["feedback"]
    assert feedback == {"total": 2, "correct": 1, "accuracy": 0.5, "output": "label"}


def test_a_configured_output_is_judged_instead() -> None:
    recorder = Recorder(seed=1, options=EvidenceOptions(accuracy_output="probabilities"))
    served(recorder, "r1", ONNX[:1])
    told = recorder.feedback("m", Feedback("r1", [0.2, 0.8]))
    assert told is not None
    assert told["correct"] is True
    assert told["output"] == "probabilities"


def test_a_label_naming_outputs_judges_those() -> None:
    recorder = Recorder(seed=1)
    served(recorder, "r1", ONNX[:1])
    told = recorder.feedback("m", Feedback("r1", {"probabilities": [0.2, 0.8], "label": 0}))
    assert told is not None
    assert told["correct"] is False  # the label output is off
    assert told["output"] == "label,probabilities"


def test_a_one_output_model_is_judged_whole_and_names_no_output() -> None:
    recorder = Recorder(seed=1)
    served(recorder, "r1", [3, 4])
    told = recorder.feedback("m", Feedback("r1", [3, 5]))
    assert told == {"request_id": "r1", "version": 1, "correct": [True, False]}
    assert recorder.stats("m", 1).snapshot()["feedback"]["output"] is None
    served(recorder, "r2", [3, 4])
    with pytest.raises(PreconditionFailed, match="2 predictions"):
        recorder.feedback("m", Feedback("r2", 3))


def test_the_label_output_is_found_by_name_then_by_kind() -> None:
    assert judged_output({"probabilities": [0.1], "output_label": "cat"}) == "output_label"
    assert judged_output({"scores": [0.1, 0.9], "class": "cat"}) == "class"
    assert judged_output({"a": [0.1], "b": [0.2]}) == "a"
    assert judged_output({"a": 1, "b": 2}, "b") == "b"
    assert judged_output({"a": 1}, "missing") == "a"
    assert judged_output(0.5) == ""
