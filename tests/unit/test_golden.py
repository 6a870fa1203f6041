"""One definition of a golden example, judged the same way everywhere."""

from __future__ import annotations

import math

import pytest

from lastgood.domain.codec import golden_from_json, golden_to_json
from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import (
    GoldenExample,
    GoldenSource,
    Param,
    golden_evidence,
    golden_example,
    golden_matches,
    golden_params,
    golden_problems,
    golden_summary,
    with_recorded_outputs,
)
from lastgood.services.documents import parse_golden
from lastgood.services.golden_runs import golden_outputs


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


# -- several outputs: each held to its own tolerance, labels exactly ---------------------------

def test_each_output_is_judged_on_its_own_and_named_with_how_far_it_is_off() -> None:
    example = GoldenExample({"x": 1.0}, {"label": 2, "probabilities": [0.1, 0.2, 0.7]},
                            tolerance=1e-6, tolerances={"probabilities": 1e-2})
    assert golden_problems([example], [{"label": 2, "probabilities": [0.105, 0.2, 0.695]}]) == []
    [problem] = golden_problems([example], [{"label": 1, "probabilities": [0.1, 0.2, 0.7]}])
    assert problem == "golden example 0, output 'label': expected 2, got 1 (off by 1, exact)"
    [evidence] = golden_evidence([example], [{"label": 2, "probabilities": [0.1, 0.25, 0.65]}])
    assert evidence["output"] == "probabilities"
    assert evidence["difference"] == pytest.approx(0.05)
    assert evidence["tolerance"] == 1e-2
    assert evidence["example"] == 0


def test_a_label_is_held_exactly_whatever_the_tolerance() -> None:
    example = GoldenExample({"x": 1.0}, {"label": 10_000_000, "score": 0.5}, tolerance=0.1)
    assert not golden_matches(10_000_000, 10_000_001, 0.1)
    [problem] = golden_problems([example], [{"label": 10_000_001, "score": 0.52}])
    assert "output 'label'" in problem
    assert "exact" in problem
    assert golden_problems([GoldenExample({"x": 1.0}, "cat")], ["dog"]) == [
        "golden example 0: expected 'cat', got 'dog' (exact)"]


def test_different_output_names_are_one_difference_without_a_size() -> None:
    example = GoldenExample({"x": 1.0}, {"label": 1})
    [evidence] = golden_evidence([example], [{"prediction": 1}])
    assert evidence["output"] == ""
    assert evidence["difference"] is None


def test_the_evidence_keeps_the_params_an_example_ran_with() -> None:
    example = GoldenExample({"x": 1.0}, 0.5, params={"threshold": 60.0})
    [evidence] = golden_evidence([example], [0.7])
    assert evidence["params"] == {"threshold": 60.0}
    assert "(params {'threshold': 60.0})" in evidence["problem"]
    assert golden_params([example, GoldenExample({"x": 2.0}, 1)]) == [{"threshold": 60.0}, {}]


class Scorer:
    """Adds the `shift` param (default 0) to x; records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, float]]] = []

    def predict(self, records: list[dict[str, float]]) -> list[float]:
        return self.predict_with_params(records, {"shift": 0.0})

    def predict_with_params(self, records: list[dict[str, float]],
                            params: dict[str, float]) -> list[float]:
        self.calls.append((len(records), dict(params)))
        return [r["x"] + params["shift"] for r in records]


def test_golden_examples_run_in_batches_of_the_same_params_over_the_defaults() -> None:
    golden = [GoldenExample({"x": 1.0}, None, params={"shift": 10.0}),
              GoldenExample({"x": 2.0}, None),
              GoldenExample({"x": 3.0}, None, params={"shift": 10.0})]
    scorer = Scorer()
    schema = (Param("shift", "double", 0.0), Param("scale", "double", 1.0))
    assert golden_outputs(scorer, golden, schema) == [11.0, 2.0, 13.0]
    assert scorer.calls == [(2, {"shift": 10.0, "scale": 1.0}), (1, {"shift": 0.0})]


def test_params_to_a_loader_that_cannot_pass_them_are_refused_by_name() -> None:
    class Plain:
        def predict(self, records: list[dict[str, float]]) -> list[float]:
            return [0.0 for _ in records]

    with pytest.raises(InvalidInput, match="runs with params"):
        golden_outputs(Plain(), [GoldenExample({"x": 1.0}, None, params={"t": 1})])


def test_a_golden_file_states_tolerances_per_output_and_params() -> None:
    [example] = parse_golden([{"input": {"x": 1.0}, "output": {"label": 1, "p": [0.5]},
                               "tolerance": {"p": 1e-3}, "params": {"t": 2}}], source="g.json")
    assert example.tolerances == {"p": 1e-3}
    assert example.params == {"t": 2}
    assert golden_from_json(golden_to_json(example)) == example
    [mlflow] = parse_golden({"dataframe_split": {"columns": ["x"], "data": [[1.0]]},
                             "params": {"threshold": 60.0}}, source="serving_input_example.json")
    assert mlflow.params == {"threshold": 60.0}
    for bad in ({"p": -1}, {"p": "x"}, float("nan")):
        with pytest.raises(InvalidInput, match="bad tolerance"):
            parse_golden([{"input": {"x": 1.0}, "tolerance": bad}], source="g.json")
    with pytest.raises(InvalidInput, match="params that are not an object"):
        parse_golden([{"input": {"x": 1.0}, "params": [1]}], source="g.json")
