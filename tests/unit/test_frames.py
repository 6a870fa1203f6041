"""Records become the DataFrame a model was fit on: the schema's order and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from lastgood.adapters.formats.records import frame
from lastgood.adapters.formats.skops_format import estimator_predictor
from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Column

COLUMNS = (Column("color", "string"), Column("size", "float64"), Column("count", "int64"),
           Column("flag", "bool"), Column("when", "datetime"),
           Column("extra", "float64", optional=True))


def test_the_frame_has_the_schema_order_and_dtypes() -> None:
    built = frame([{"color": "red", "size": 1, "count": 3, "flag": True,
                    "when": "2026-01-02T03:04:05"}], COLUMNS)
    assert list(built.columns) == [c.name for c in COLUMNS]
    assert [str(built[c].dtype) for c in ("size", "count", "flag")] == ["float64", "int64", "bool"]
    assert str(built["when"].dtype).startswith("datetime64")
    assert built["color"].tolist() == ["red"]
    assert np.isnan(built["extra"][0])  # an optional column left out is missing


def test_a_required_column_left_out_is_named() -> None:
    with pytest.raises(InvalidInput, match="record 1 has no 'size'"):
        frame([{"size": 1.0}, {}], [Column("size", "float64")])


def test_a_value_that_does_not_convert_names_its_column() -> None:
    with pytest.raises(InvalidInput) as refused:
        frame([{"size": "big"}], [Column("size", "float64")])
    assert refused.value.details["field"] == "size"


def test_a_pipeline_that_picks_columns_by_name_gets_a_frame() -> None:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    data = pd.DataFrame({"color": ["red", "blue"] * 10, "size": np.arange(20.0)})
    target = (data["color"] == "red").astype(int)
    prep = ColumnTransformer([("onehot", OneHotEncoder(), ["color"])], remainder="passthrough")
    model = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(data, target)
    predictor = estimator_predictor(model, (Column("color", "string"), Column("size", "float64")))
    assert predictor.frame_columns is not None
    assert predictor.predict([{"color": "red", "size": 3.0}, {"color": "blue", "size": 4.0}]) \
        == model.predict(data.iloc[[0, 1]]).tolist()


def test_a_numeric_model_that_only_knows_its_names_gets_a_matrix_in_their_order() -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    data = pd.DataFrame({"b": np.arange(20.0), "a": np.arange(20.0)[::-1]})
    model = LogisticRegression().fit(data, (data["b"] > 9).astype(int))
    declared = (Column("a", "float64"), Column("b", "float64"))  # the schema's own order
    predictor = estimator_predictor(model, declared)
    assert (predictor.frame_columns, predictor.columns, predictor.named) == (None, ("b", "a"),
                                                                            True)
    assert predictor.predict([{"a": 1.0, "b": 18.0}]) == model.predict(
        pd.DataFrame({"b": [18.0], "a": [1.0]})).tolist()
