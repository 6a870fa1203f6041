"""LocalModelFormats.inspect on real tiny models: skops, ONNX, MLflow directories, pickle."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastgood.adapters.formats import LocalModelFormats
from lastgood.domain.errors import InvalidInput, UnsafeFormat
from lastgood.domain.flavors import Inspection
from lastgood.domain.versions import Column, GoldenExample
from tests.helpers_models import (
    IRIS_COLUMNS,
    Doubler,
    colspecs,
    iris,
    train_iris,
    train_iris_onnx,
    train_iris_pickle,
    train_iris_skops,
    write_mlflow_dir,
)

FORMATS = LocalModelFormats()


def inspect(path: Path, flavor: str | None = None, *, allow_pickle: bool = False) -> Inspection:
    return FORMATS.inspect(path, flavor=flavor, allow_pickle=allow_pickle)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    train_iris_skops(root / "iris.skops")
    train_iris_onnx(root / "iris.onnx")
    train_iris_pickle(root / "iris.pkl")
    return root


def cut_in_half(source: Path, dest: Path) -> Path:
    data = source.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def test_skops_is_sklearn_with_columns_from_the_model(models: Path) -> None:
    found = inspect(models / "iris.skops")
    assert found.flavor == "sklearn"
    assert not found.unsafe
    assert found.schema is not None
    inputs, outputs = found.schema
    assert [c.name for c in inputs] == ["x0", "x1", "x2", "x3"]
    assert {c.dtype for c in inputs} == {"float64"}
    assert outputs == (Column("prediction", "int64"),)


def test_skops_feature_names_become_the_columns(tmp_path: Path) -> None:
    path = train_iris_skops(tmp_path / "named.skops", model=train_iris(feature_names=IRIS_COLUMNS))
    found = inspect(path)
    assert found.schema is not None
    assert tuple(c.name for c in found.schema[0]) == IRIS_COLUMNS


@pytest.mark.parametrize("alias", ["sklearn", "skops", "scikit-learn", " SKLEARN "])
def test_flavor_aliases_of_skops_are_accepted(models: Path, alias: str) -> None:
    assert inspect(models / "iris.skops", alias).flavor == "sklearn"


def test_allow_listed_tree_internals_load_and_are_noted(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    features, labels = iris()
    path = train_iris_skops(tmp_path / "tree.skops",
                            model=DecisionTreeClassifier(max_depth=2).fit(features, labels))
    found = inspect(path)
    assert found.flavor == "sklearn"
    assert any("sklearn.tree._tree.Tree" in note for note in found.notes)


def test_a_type_outside_the_allow_list_is_refused_by_name(tmp_path: Path) -> None:
    features, _ = iris()
    path = train_iris_skops(tmp_path / "custom.skops", model=Doubler().fit(features))
    with pytest.raises(InvalidInput) as caught:
        inspect(path)
    assert "helpers_models.Doubler" in caught.value.message
    assert "ONNX" in caught.value.fix


def test_onnx_schema_comes_from_the_graph(models: Path) -> None:
    found = inspect(models / "iris.onnx")
    assert found.flavor == "onnx"
    assert found.schema == (
        (Column("input", "float32", (4,)),),
        (Column("label", "int64"), Column("probabilities", "float32", (3,))),
    )
    assert any(note.startswith("opsets:") for note in found.notes)


def test_a_flavor_that_does_not_match_names_both(models: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        inspect(models / "iris.skops", "onnx")
    assert "'onnx'" in caught.value.message
    assert "skops" in caught.value.message
    with pytest.raises(InvalidInput, match="'sklearn'"):
        inspect(models / "iris.onnx", "sklearn")


def test_pickle_is_refused_without_consent(models: Path) -> None:
    with pytest.raises(UnsafeFormat) as caught:
        inspect(models / "iris.pkl")
    assert "loading a pickle runs arbitrary code" in caught.value.message
    assert caught.value.fix == ("convert it to skops or ONNX, or pass --allow-pickle to accept "
                                "the risk (the version is marked unsafe_format)")


def test_pickle_with_consent_is_marked_unsafe(models: Path) -> None:
    found = inspect(models / "iris.pkl", allow_pickle=True)
    assert found.unsafe
    assert found.flavor == "pickle"
    assert inspect(models / "iris.pkl", "sklearn", allow_pickle=True).flavor == "sklearn"


def test_a_pickle_named_onnx_is_still_a_pickle(models: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "innocent.onnx"
    disguised.write_bytes((models / "iris.pkl").read_bytes())
    with pytest.raises(UnsafeFormat):
        inspect(disguised)


def test_joblib_is_a_pickle(tmp_path: Path) -> None:
    import joblib

    path = tmp_path / "iris.joblib"
    joblib.dump(train_iris(), path)
    with pytest.raises(UnsafeFormat):
        inspect(path)
    assert inspect(path, allow_pickle=True).unsafe


@pytest.mark.parametrize("name", ["iris.skops", "iris.onnx", "iris.pkl"])
def test_a_file_cut_in_half_is_refused_on_one_line(models: Path, tmp_path: Path,
                                                   name: str) -> None:
    half = cut_in_half(models / name, tmp_path / name)
    with pytest.raises(InvalidInput) as caught:
        inspect(half, allow_pickle=True)
    assert not isinstance(caught.value, UnsafeFormat)
    assert "\n" not in str(caught.value)
    assert "truncated" in caught.value.fix


@pytest.mark.parametrize("name", ["empty.skops", "empty.onnx", "empty.pkl", "empty"])
def test_an_empty_file_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(InvalidInput, match="is empty"):
        inspect(tmp_path / name, allow_pickle=True)


def test_unknown_bytes_without_extension_name_the_formats(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"definitely not a model")
    with pytest.raises(InvalidInput) as caught:
        inspect(tmp_path / "model.bin")
    assert "cannot tell the format" in caught.value.message
    assert ".skops" in caught.value.fix


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"nowhere\.skops"):
        inspect(tmp_path / "nowhere.skops")


def test_a_plain_directory_with_one_model_file_is_that_file(models: Path, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("iris")
    (tmp_path / "iris.onnx").write_bytes((models / "iris.onnx").read_bytes())
    assert inspect(tmp_path).flavor == "onnx"
    (tmp_path / "iris.skops").write_bytes((models / "iris.skops").read_bytes())
    with pytest.raises(InvalidInput, match="cannot tell which file"):
        inspect(tmp_path)


def test_mlflow_sklearn_dir_reads_signature_runtime_and_example(tmp_path: Path) -> None:
    example = {"columns": list(IRIS_COLUMNS), "data": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]}
    found = inspect(write_mlflow_dir(tmp_path / "m", example=example))
    assert found.flavor == "sklearn"
    assert not found.unsafe
    assert found.schema == (tuple(Column(c, "float64") for c in IRIS_COLUMNS),
                            (Column("prediction", "int64"),))
    assert found.runtime is not None
    assert found.runtime.python == "3.11.7"
    assert dict(found.runtime.packages) == {"scikit-learn": "1.9.1"}
    assert any("numpy>=1" in n for n in found.notes)
    assert any("mlflow" in n and "left out" in n for n in found.native_notes)
    assert found.golden[0] == GoldenExample(
        inputs=dict(zip(IRIS_COLUMNS, [5.1, 3.5, 1.4, 0.2], strict=True)), expected=None)
    assert len(found.golden) == 2


def test_mlflow_colspec_types_map_to_domain_dtypes(tmp_path: Path) -> None:
    kinds = ["double", "float", "long", "integer", "boolean", "string"]
    signature = {"inputs": colspecs([(k, k) for k in kinds]),
                 "outputs": colspecs([("y", "double")])}
    found = inspect(write_mlflow_dir(tmp_path / "m", signature=False,
                                     extra={"signature": signature}))
    assert found.schema is not None
    assert [c.dtype for c in found.schema[0]] == ["float64", "float32", "int64", "int32",
                                                  "bool", "string"]
    assert found.schema[1] == (Column("y", "float64"),)


def test_mlflow_without_signature_falls_back_to_the_model(tmp_path: Path) -> None:
    found = inspect(write_mlflow_dir(tmp_path / "m", signature=False))
    assert found.schema is not None
    assert [c.name for c in found.schema[0]] == ["x0", "x1", "x2", "x3"]
    assert any("no signature" in n for n in found.notes)


def test_mlflow_conda_yaml_is_read_when_nothing_else_pins(tmp_path: Path) -> None:
    import yaml

    root = write_mlflow_dir(tmp_path / "m", requirements=None, python_env={"python": ""})
    conda = {"dependencies": ["python=3.11.7", "pip<=24", {"pip": ["numpy==2.4.6"]}]}
    (root / "conda.yaml").write_text(yaml.safe_dump(conda))
    found = inspect(root)
    assert found.runtime is not None
    assert found.runtime.python == "3.11.7"
    # scikit-learn comes from the flavor's sklearn_version when no file pins it
    assert dict(found.runtime.packages) == {"numpy": "2.4.6", "scikit-learn": "1.9.1"}


def test_mlflow_onnx_dir(tmp_path: Path) -> None:
    found = inspect(write_mlflow_dir(tmp_path / "m", flavor="onnx", model_name="model.onnx"))
    assert found.flavor == "onnx"
    assert found.schema is not None
    assert len(found.schema[0]) == 4  # the signature wins over the graph


def test_mlflow_flavor_mismatch_names_both(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        inspect(write_mlflow_dir(tmp_path / "m"), "onnx")
    assert "'onnx'" in caught.value.message
    assert "'sklearn'" in caught.value.message


def test_mlflow_pickled_sklearn_needs_consent(tmp_path: Path) -> None:
    root = write_mlflow_dir(tmp_path / "m", model_name="model.pkl")
    with pytest.raises(UnsafeFormat):
        inspect(root)
    assert inspect(root, allow_pickle=True).unsafe


def test_mlflow_python_function_only_needs_consent(tmp_path: Path) -> None:
    root = write_mlflow_dir(tmp_path / "m", flavor="custom")
    with pytest.raises(UnsafeFormat, match="python_function"):
        inspect(root)
    found = inspect(root, "pyfunc", allow_pickle=True)
    assert (found.flavor, found.unsafe) == ("python_function", True)


def test_mlflow_without_flavors_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "MLmodel").write_text("artifact_path: model\n")
    with pytest.raises(InvalidInput, match="has no flavors"):
        inspect(root)
    (root / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(InvalidInput, match="not readable YAML"):
        inspect(root)


def test_mlflow_model_file_outside_the_dir_is_refused(tmp_path: Path) -> None:
    root = write_mlflow_dir(tmp_path / "m")
    text = (root / "MLmodel").read_text().replace("pickled_model: model.skops",
                                                  "pickled_model: ../elsewhere.skops")
    (root / "MLmodel").write_text(text)
    with pytest.raises(InvalidInput, match="outside"):
        inspect(root)


@pytest.mark.parametrize("example", [
    [{"a": 1.0}, {"a": 2.0}],
    {"a": [1.0, 2.0]},
    {"dataframe_split": {"columns": ["a"], "data": [[1.0], [2.0]]}},
    {"inputs": [{"a": 1.0}, {"a": 2.0}]},
])
def test_mlflow_example_layouts(tmp_path: Path, example: object) -> None:
    root = write_mlflow_dir(tmp_path / "m", example=example)
    assert [g.inputs for g in inspect(root).golden] == [{"a": 1.0}, {"a": 2.0}]


def test_an_unreadable_example_is_a_note_not_a_failure(tmp_path: Path) -> None:
    root = write_mlflow_dir(tmp_path / "m", example={"a": 1})
    (root / "input_example.json").write_text("{broken")
    found = inspect(root)
    assert found.golden == ()
    assert any("input example" in n for n in found.notes)
