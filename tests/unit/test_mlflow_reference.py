"""The reference check's own parts: rows generated from the golden examples, and how the
reference's batch answer is told apart (it decides the JSON of /invocations)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from lastgood.adapters.formats.mlflow_reference import disagreement, generated_rows, output_form
from lastgood.domain.versions import Column, Schema, Version
from lastgood.testing import make_manifest

EXAMPLES = [{"amount": 3.5, "visits": 0, "tier": "gold", "x": [0.0, 10.0]},
            {"amount": 9.0, "visits": 6, "tier": "silver", "x": [1.0, 20.0]}]
COLUMNS = (Column("amount", "float64"), Column("visits", "int64"), Column("tier", "string"),
           Column("x", "float32", (-1, 2)))


def test_generated_rows_keep_each_columns_dtype_range_and_categories() -> None:
    rows = generated_rows(EXAMPLES, COLUMNS, 200)
    assert len(rows) == 200
    assert all(3.5 <= r["amount"] <= 9.0 and isinstance(r["amount"], float) for r in rows)
    assert all(0 <= r["visits"] <= 6 and isinstance(r["visits"], int) for r in rows)
    assert {r["tier"] for r in rows} == {"gold", "silver"}
    assert all(0.0 <= r["x"][0] <= 1.0 and 10.0 <= r["x"][1] <= 20.0 for r in rows)
    assert generated_rows(EXAMPLES, COLUMNS, 200) == rows  # seeded: the same rows every time


def test_output_form_tells_mlflows_answers_apart() -> None:
    assert output_form(np.zeros((2, 3))) == "array"
    assert output_form({"label": np.zeros(2), "probabilities": np.zeros((2, 3))}) == "dict"
    assert output_form(pd.Series([0.5, 0.7])) == "series:0"
    assert output_form(pd.DataFrame({"score": [1.0]})) == "frame:score"
    assert output_form(pd.DataFrame({"score": [1.0], "band": ["high"]})) == "frame"


class Reference:
    """mlflow.pyfunc's stand-in: answers probabilities where a native path answers labels."""

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        return np.column_stack([data["amount"] / 10, 1 - data["amount"] / 10])


class Labels:
    def predict(self, records: list[dict[str, object]]) -> list[object]:
        return [0 for _ in records]


def test_a_native_path_answering_otherwise_is_named_with_both_answers() -> None:
    manifest = make_manifest(("MLmodel", b"flavors: {}"))
    version = Version(model="m", number=0, manifest=manifest, digest=manifest.digest,
                      flavor="sklearn", created_at=datetime(2026, 1, 1, tzinfo=UTC),
                      created_by="t", schema=Schema(inputs=COLUMNS[:1]))
    records = [{"amount": 3.5}, {"amount": 9.0}]
    why = disagreement({"outputs": [0, 0]}, Labels(), Reference(), records, version)
    assert "answers 0 where mlflow.pyfunc answers [0.35" in why
    assert "golden example 0" in why
