"""MLflow's own files are accepted wherever lastgood takes a schema or golden examples."""

from __future__ import annotations

import json

import pytest

from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Column, GoldenSource
from lastgood.services.documents import parse_env_columns, parse_golden, parse_schema

SIGNATURE = {
    "inputs": json.dumps([{"type": "string", "name": "color", "required": True},
                          {"type": "double", "name": "size", "required": True},
                          {"type": "long", "name": "count", "required": False}]),
    "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]),
    "params": None,
}


def test_an_mlflow_signature_is_a_schema() -> None:
    schema = parse_schema(SIGNATURE, source="signature.json")
    assert schema.inputs == (Column("color", "string"), Column("size", "float64"),
                             Column("count", "int64", optional=True))
    assert schema.outputs == (Column("prediction", "int64"),)


def test_bare_mlflow_colspecs_are_input_columns_and_feed_an_env() -> None:
    specs = [{"type": "double", "name": "size"}]
    assert parse_schema(specs, source="s").inputs == (Column("size", "float64"),)
    assert parse_env_columns(specs, source="s", key="feature_schema") == (
        Column("size", "float64"),)
    assert parse_env_columns(SIGNATURE, source="s", key="expected_outputs") == (
        Column("prediction", "int64"),)


def test_an_mlflow_type_lastgood_cannot_express_is_refused() -> None:
    with pytest.raises(InvalidInput, match="cannot express"):
        parse_schema([{"type": "binary", "name": "blob"}], source="s")


def test_an_mlflow_input_example_is_golden_inputs_to_record() -> None:
    example = {"columns": ["color", "size"], "data": [["red", 1.0], ["blue", 2.0]]}
    golden = parse_golden(example, source="input_example.json")
    assert [g.inputs for g in golden] == [{"color": "red", "size": 1.0},
                                          {"color": "blue", "size": 2.0}]
    assert {g.source for g in golden} == {GoldenSource.UNCHECKED}


def test_an_input_example_with_its_predictions_is_golden_outputs() -> None:
    example = {"dataframe_split": {"columns": ["size"], "data": [[1.0], [2.0]]},
               "predictions": [0, 1]}
    golden = parse_golden(example, source="g.json")
    assert [(g.inputs, g.expected, g.source) for g in golden] == [
        ({"size": 1.0}, 0, GoldenSource.GIVEN), ({"size": 2.0}, 1, GoldenSource.GIVEN)]


def test_predictions_that_do_not_line_up_with_the_rows_are_refused() -> None:
    with pytest.raises(InvalidInput, match="must be a list of 2 outputs"):
        parse_golden({"dataframe_records": [{"size": 1.0}, {"size": 2.0}], "predictions": [0]},
                     source="g.json")


def test_lastgood_golden_examples_may_leave_the_output_to_be_recorded() -> None:
    golden = parse_golden([{"input": {"x": 1.0}}, {"input": {"x": 2.0}, "output": 3}],
                          source="g.json")
    assert [g.source for g in golden] == [GoldenSource.UNCHECKED, GoldenSource.GIVEN]
