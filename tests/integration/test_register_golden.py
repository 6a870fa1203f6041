"""Registration runs the golden examples once in a child process: an MLflow input example gets
its outputs recorded, and given outputs the model does not reproduce are refused."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import GoldenExample, GoldenSource
from lastgood.sdk import Lastgood
from lastgood.services.registry import RegisterRequest

pytestmark = pytest.mark.slow


def frame_pipeline() -> tuple[Any, pd.DataFrame]:
    """The common tabular pipeline: columns picked by name, a string encoder, a scaler."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = pd.DataFrame({"color": ["red", "blue", "green"] * 20,
                         "size": np.linspace(0.0, 59.0, 60), "count": np.arange(60)})
    target = ((data["size"] > 30) | (data["color"] == "red")).astype(int)
    steps = ColumnTransformer([("onehot", OneHotEncoder(), ["color"]),
                               ("scale", StandardScaler(), ["size", "count"])])
    return Pipeline([("prep", steps), ("clf", LogisticRegression())]).fit(data, target), data


@pytest.fixture(scope="module")
def mlflow_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, pd.DataFrame]:
    import mlflow
    from mlflow.models import infer_signature

    model, data = frame_pipeline()
    root = tmp_path_factory.mktemp("mlflow") / "pipeline"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(model, str(root), serialization_format="skops",
                                  signature=infer_signature(data, model.predict(data)),
                                  input_example=data.iloc[[0, 31, 44]])
    return root, model, data


def test_an_mlflow_input_example_gets_its_outputs_recorded(
        home: Path, mlflow_dir: tuple[Path, Any, pd.DataFrame]) -> None:
    root, model, data = mlflow_dir
    with Lastgood() as lg:
        done = lg.services.registry.register_noted(
            RegisterRequest(model="pipeline", path=root), actor="tester")
    version = done.version
    assert [g.source for g in version.golden] == [GoldenSource.RECORDED] * 3
    assert [g.expected for g in version.golden] == model.predict(data.iloc[[0, 31, 44]]).tolist()
    assert [c.dtype for c in version.schema.inputs] == ["string", "float64", "int64"]
    assert any("recorded the outputs of 3 golden example(s)" in n for n in done.notes)


def test_given_outputs_the_model_does_not_reproduce_are_refused_and_nothing_is_kept(
        home: Path, mlflow_dir: tuple[Path, Any, pd.DataFrame]) -> None:
    root, model, data = mlflow_dir
    first = data.iloc[0].to_dict()
    wrong = 1 - int(model.predict(data.iloc[[0]])[0])
    with Lastgood() as lg:
        with pytest.raises(InvalidInput) as refused:
            lg.register("pipeline", root, golden=[GoldenExample(first, wrong)])
        assert "golden examples were not reproduced at registration" in refused.value.message
        assert f"expected {wrong}" in refused.value.message
        assert lg.models() == []
    assert not [p for p in (home / "artifacts").rglob("*") if p.is_file()
                and "spool" not in p.parts]


def test_a_batch_records_each_version_and_a_refused_one_fails_alone(
        home: Path, mlflow_dir: tuple[Path, Any, pd.DataFrame]) -> None:
    root, model, data = mlflow_dir
    wrong = 1 - int(model.predict(data.iloc[[0]])[0])
    reqs = [RegisterRequest(model="pipeline", path=root, provenance={"origin": "a"}),
            RegisterRequest(model="pipeline", path=root, provenance={"origin": "b"},
                            golden=(GoldenExample(data.iloc[0].to_dict(), wrong),)),
            RegisterRequest(model="pipeline", path=root, provenance={"origin": "c"})]
    with Lastgood() as lg:
        first, refused, third = lg.services.registry.register_many(reqs, actor="tester")
        assert isinstance(refused, InvalidInput)
        assert f"expected {wrong}" in refused.message
        expected = model.predict(data.iloc[[0, 31, 44]]).tolist()
        for done in (first, third):
            assert not isinstance(done, InvalidInput)
            assert [g.expected for g in done.version.golden] == expected
        assert [v.number for v in lg.services.registry.versions("pipeline")] == [2, 1]
        store = lg.services.ports.store  # the refused one's blobs are the others': all kept
        assert all(store.exists(f.sha256) for d in (first, third) for f in d.version.manifest.files)
