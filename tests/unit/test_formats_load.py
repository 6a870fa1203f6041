"""LocalModelFormats.load: predictions from skops, ONNX, MLflow dirs and consented pickles."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from lastgood.adapters.formats import LocalModelFormats
from lastgood.domain.errors import InvalidInput, UnsafeFormat
from lastgood.domain.versions import Column, Schema
from lastgood.ports import Predictor
from tests.helpers_models import (
    IRIS_COLUMNS,
    IRIS_SCHEMA,
    fetched_dir,
    iris,
    iris_records,
    train_iris,
    train_iris_onnx,
    train_iris_pickle,
    train_iris_skops,
    version_of,
    write_mlflow_dir,
)

FORMATS = LocalModelFormats()
RECORDS = iris_records(6)


def load(path: Path, flavor: str, *, schema: Schema = IRIS_SCHEMA,
         unsafe: bool = False) -> Predictor:
    version = version_of(path, flavor=flavor, schema=schema, unsafe=unsafe)
    return FORMATS.load(version, fetched_dir(path))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    for name, writer in (("skops", train_iris_skops), ("onnx", train_iris_onnx),
                         ("pickle", train_iris_pickle)):
        writer(root / name / f"iris.{'pkl' if name == 'pickle' else name}")
    return root


def expected() -> list[int]:
    features, _ = iris()
    picked = features[:: max(1, len(features) // 6)][:6]
    return [int(v) for v in train_iris().predict(picked)]


def test_skops_predicts_plain_ints_in_schema_order(models: Path) -> None:
    out = load(models / "skops" / "iris.skops", "sklearn").predict(RECORDS)
    assert out == expected()
    assert all(type(v) is int for v in out)
    assert len(set(out)) > 1  # the rows span several classes


def test_skops_and_onnx_agree(models: Path) -> None:
    skops = load(models / "skops" / "iris.skops", "sklearn").predict(RECORDS)
    onnx = load(models / "onnx" / "iris.onnx", "onnx").predict(RECORDS)
    assert skops == onnx


def test_record_key_order_does_not_matter(models: Path) -> None:
    shuffled = [dict(reversed(list(r.items()))) for r in RECORDS]
    predictor = load(models / "skops" / "iris.skops", "sklearn")
    assert predictor.predict(shuffled) == predictor.predict(RECORDS)


def test_onnx_takes_its_named_tensor_input(models: Path) -> None:
    schema = Schema(inputs=(Column("input", "float32", (4,)),))
    records = [{"input": [r[c] for c in IRIS_COLUMNS]} for r in RECORDS]
    assert load(models / "onnx" / "iris.onnx", "onnx", schema=schema).predict(records) \
        == expected()


def test_without_schema_columns_are_x0_to_xn(models: Path) -> None:
    records = iris_records(6, columns=("x0", "x1", "x2", "x3"))
    assert load(models / "skops" / "iris.skops", "sklearn", schema=Schema()).predict(records) \
        == expected()
    assert load(models / "onnx" / "iris.onnx", "onnx", schema=Schema()).predict(records) \
        == expected()


def test_feature_names_of_the_model_order_the_columns(tmp_path: Path) -> None:
    path = train_iris_skops(tmp_path / "named.skops", model=train_iris(feature_names=IRIS_COLUMNS))
    # filterwarnings=error: scikit-learn's "no valid feature names" warning would fail this
    assert load(path, "sklearn", schema=Schema()).predict(RECORDS) == expected()


def test_a_missing_column_names_it(models: Path) -> None:
    record = {k: v for k, v in RECORDS[0].items() if k != "petal_width"}
    for path, flavor in ((models / "skops" / "iris.skops", "sklearn"),
                         (models / "onnx" / "iris.onnx", "onnx")):
        with pytest.raises(InvalidInput, match="petal_width"):
            load(path, flavor).predict([record])


def test_non_numbers_are_refused_by_onnx(models: Path) -> None:
    record = {**RECORDS[0], "sepal_length": "long"}
    with pytest.raises(InvalidInput, match="float32"):
        load(models / "onnx" / "iris.onnx", "onnx").predict([record])


def test_no_records_no_outputs(models: Path) -> None:
    assert load(models / "skops" / "iris.skops", "sklearn").predict([]) == []
    assert load(models / "onnx" / "iris.onnx", "onnx").predict([]) == []


def test_pickle_loads_only_when_the_version_is_unsafe(models: Path) -> None:
    path = models / "pickle" / "iris.pkl"
    with pytest.raises(UnsafeFormat, match="not marked unsafe_format"):
        load(path, "pickle")
    assert load(path, "pickle", unsafe=True).predict(RECORDS) == expected()


def test_a_version_flavor_that_does_not_fit_its_file_is_refused(models: Path) -> None:
    with pytest.raises(InvalidInput, match="does not match"):
        load(models / "skops" / "iris.skops", "onnx")


def test_mlflow_sklearn_dir_predicts(tmp_path: Path) -> None:
    root = write_mlflow_dir(tmp_path / "m")
    assert load(root, "sklearn").predict(RECORDS) == expected()


def test_mlflow_onnx_dir_predicts_every_output_named(tmp_path: Path) -> None:
    """As mlflow.pyfunc answers an MLflow directory's graph: every output, by its name."""
    root = write_mlflow_dir(tmp_path / "m", flavor="onnx", model_name="model.onnx")
    out = load(root, "onnx").predict(RECORDS)
    assert [o["label"] for o in out] == expected()
    assert all(abs(sum(o["probabilities"]) - 1.0) < 1e-5 for o in out)


def test_mlflow_pickled_sklearn_needs_an_unsafe_version(tmp_path: Path) -> None:
    root = write_mlflow_dir(tmp_path / "m", model_name="model.pkl")
    with pytest.raises(UnsafeFormat):
        load(root, "sklearn")
    assert load(root, "sklearn", unsafe=True).predict(RECORDS) == expected()


def test_mlflow_python_function_needs_mlflow(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)  # as on a host without mlflow
    root = write_mlflow_dir(tmp_path / "m", flavor="custom")
    with pytest.raises(UnsafeFormat):
        load(root, "python_function")
    with pytest.raises(InvalidInput, match="install mlflow"):
        load(root, "python_function", unsafe=True)


def test_load_uses_the_manifest_not_stray_files(models: Path, tmp_path: Path) -> None:
    (tmp_path / "iris.skops").write_bytes((models / "skops" / "iris.skops").read_bytes())
    version = version_of(tmp_path / "iris.skops", flavor="sklearn")
    (tmp_path / ".lastgood-complete").write_text("marker")
    (tmp_path / "other.onnx").write_bytes((models / "onnx" / "iris.onnx").read_bytes())
    assert FORMATS.load(version, tmp_path).predict(RECORDS) == expected()


def test_formats_pickle_for_probe_processes() -> None:
    assert isinstance(pickle.loads(pickle.dumps(FORMATS)), LocalModelFormats)
