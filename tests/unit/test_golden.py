"""One definition of a golden example, judged the same way everywhere."""

from __future__ import annotations

import math

from lastgood.domain.versions import (
    GoldenExample,
    GoldenSource,
    golden_example,
    golden_matches,
    golden_problems,
    golden_summary,
    with_recorded_outputs,
)


def test_an_example_without_an_output_is_unchecked_and_only_has_to_run() -> None:
    example = GoldenExample({"x": 1.0}, None)
    assert example.source is GoldenSource.UNCHECKED
    assert not example.checked
    assert golden_problems([example], ["anything"]) == []


def test_given_and_recorded_outputs_must_be_reproduced() -> None:
    given = GoldenExample({"x": 1.0}, 1)
    recorded = GoldenExample({"x": 2.0}, 0.5, source=GoldenSource.RECORDED)
    assert golden_problems([given, recorded], [1, 0.5]) == []
    problems = golden_problems([given, recorded], [2, 0.5])
    assert len(problems) == 1
    assert "golden example 0: expected 1, got 2" in problems[0]


def test_a_missing_output_is_a_problem_not_a_pass() -> None:
    assert golden_problems([GoldenExample({"x": 1.0}, 1)], []) == [
        "1 golden examples gave 0 outputs"]


def test_numbers_match_within_a_tolerance_relative_to_their_size() -> None:
    assert golden_matches(1000.0, 1000.0005, 1e-6)
    assert not golden_matches(1000.0, 1000.01, 1e-6)
    assert golden_matches(0.5, 0.5000001, 1e-6)
    assert not golden_matches(0.5, 0.51, 1e-6)
    assert golden_matches(math.nan, math.nan, 0.0)
    assert not golden_matches(1, True, 0.0)


def test_structures_match_element_by_element_with_keys_compared_as_text() -> None:
    assert golden_matches({0: 0.25, 1: 0.75}, {"0": 0.25, "1": 0.75}, 1e-9)
    assert golden_matches([1, [0.1, 0.2]], (1, (0.1, 0.2)), 1e-9)
    assert not golden_matches([1, 2], [1, 2, 3], 1e-9)


def test_recording_fills_only_the_unchecked_examples() -> None:
    golden = (GoldenExample({"x": 1.0}, 7), GoldenExample({"x": 2.0}, None))
    recorded = with_recorded_outputs(golden, [7, 3])
    assert recorded[0] == golden[0]
    assert recorded[1] == GoldenExample({"x": 2.0}, 3, source=GoldenSource.RECORDED)
    assert golden_summary(recorded) == {"given": 1, "recorded": 1}


def test_stored_examples_older_than_sources_read_back_as_given_or_unchecked() -> None:
    assert golden_example({"x": 1}, 1).source is GoldenSource.GIVEN
    assert golden_example({"x": 1}, None).source is GoldenSource.UNCHECKED
    assert golden_example({"x": 1}, 1, 1e-6, "recorded").source is GoldenSource.RECORDED
