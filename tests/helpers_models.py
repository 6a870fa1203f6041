"""Tiny real models for tests and demos: iris classifiers as skops, ONNX, pickle and MLflow dirs.

Import as `from tests.helpers_models import ...` (the test folders are packages).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import pickle
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lastgood.domain.versions import ArtifactFile, Column, Manifest, Schema, Version

IRIS_COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
IRIS_SCHEMA = Schema(inputs=tuple(Column(c, "float64") for c in IRIS_COLUMNS),
                     outputs=(Column("prediction", "int64"),))


def iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every fifth iris row (30 rows, all three classes)."""
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    return features[::5], labels[::5]


@functools.cache
def _fitted_iris() -> Any:
    from sklearn.linear_model import LogisticRegression

    features, labels = iris()
    return LogisticRegression(max_iter=1000).fit(features, labels)


def train_iris(*, feature_names: Sequence[str] | None = None) -> Any:
    """A fitted LogisticRegression (a fresh copy); `feature_names` pretends it was fitted on a
    data frame."""
    model = copy.deepcopy(_fitted_iris())
    if feature_names is not None:
        model.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
    return model


def iris_records(count: int = 6, columns: Sequence[str] = IRIS_COLUMNS) -> list[dict[str, float]]:
    """`count` iris rows as records keyed by `columns`, spread over the classes."""
    features, _ = iris()
    picked = features[:: max(1, len(features) // count)][:count]
    return [dict(zip(columns, map(float, row), strict=True)) for row in picked]


def train_iris_skops(path: Path, *, model: Any = None) -> Path:
    """Write an iris classifier (or `model`) with skops.io.dump; returns `path`."""
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(train_iris() if model is None else model, path)
    return path


def three_iris_skops(folder: Path) -> list[Path]:
    """Three distinct iris models (regularised more and more), as skops files in `folder`."""
    out = []
    for i in range(3):
        model = train_iris(feature_names=None)
        model.set_params(C=1.0 / (i + 1))
        out.append(train_iris_skops(folder / f"iris-{i}.skops", model=model))
    return out


def train_iris_onnx(path: Path, *, model: Any = None) -> Path:
    """Write an iris classifier as ONNX (float input [N, 4], outputs label and probabilities)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    fitted = train_iris() if model is None else model
    graph = to_onnx(fitted, initial_types=[("input", FloatTensorType([None, 4]))],
                    options={id(fitted): {"zipmap": False}}, target_opset=17)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph.SerializeToString())
    return path


def train_iris_pickle(path: Path) -> Path:
    """Write an iris classifier with pickle (the unsafe format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(train_iris()))
    return path


def colspecs(columns: Sequence[tuple[str | None, str]]) -> str:
    """An mlflow signature side as MLmodel stores it: JSON text of column specs."""
    return json.dumps([{"type": kind, **({"name": name} if name else {}), "required": True}
                       for name, kind in columns])


def write_mlflow_dir(root: Path, *, flavor: str = "sklearn", model_name: str = "model.skops",
                     signature: bool = True, example: Any = None,
                     requirements: str | None = "scikit-learn==1.9.1\nmlflow==2.16.0\nnumpy>=1\n",
                     python_env: Mapping[str, Any] | None = None,
                     extra: Mapping[str, Any] | None = None) -> Path:
    """An MLflow model directory written by hand, as mlflow would lay it out."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    flavors: dict[str, Any] = {"python_function": {
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        "loader_module": f"mlflow.{flavor}", "python_version": "3.11.7"}}
    if flavor == "sklearn":
        writer = train_iris_pickle if model_name.endswith(".pkl") else train_iris_skops
        writer(root / model_name)
        flavors["sklearn"] = {"pickled_model": model_name, "sklearn_version": "1.9.1",
                              "serialization_format": "skops" if model_name.endswith(".skops")
                              else "cloudpickle"}
    elif flavor == "onnx":
        train_iris_onnx(root / model_name)
        flavors["onnx"] = {"data": model_name, "onnx_version": "1.23.2"}
    meta: dict[str, Any] = {"artifact_path": "model", "flavors": flavors,
                            "mlflow_version": "2.16.0", **(extra or {})}
    if signature:
        meta["signature"] = {"inputs": colspecs([(c, "double") for c in IRIS_COLUMNS]),
                             "outputs": colspecs([(None, "long")]), "params": None}
    if example is not None:
        meta["saved_input_example_info"] = {"artifact_path": "input_example.json",
                                            "type": "dataframe", "pandas_orient": "split"}
        (root / "input_example.json").write_text(json.dumps(example))
    (root / "MLmodel").write_text(yaml.safe_dump(meta))
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    env = python_env or {"python": "3.11.7", "build_dependencies": ["pip"],
                         "dependencies": ["-r requirements.txt"]}
    (root / "python_env.yaml").write_text(yaml.safe_dump(dict(env)))
    return root


def version_of(path: Path, *, flavor: str, schema: Schema = IRIS_SCHEMA,
               unsafe: bool = False, model: str = "iris") -> Version:
    """A registered-looking Version whose manifest lists `path` (a file or a directory)."""
    files = [(path.name, path)] if path.is_file() else [
        (p.relative_to(path).as_posix(), p) for p in sorted(path.rglob("*")) if p.is_file()]
    manifest = Manifest(tuple(
        ArtifactFile(path=name, size=local.stat().st_size,
                     sha256=hashlib.sha256(local.read_bytes()).hexdigest())
        for name, local in files))
    return Version(model=model, number=1, manifest=manifest, digest=manifest.digest,
                   flavor=flavor, created_at=datetime(2026, 1, 1, tzinfo=UTC),
                   created_by="tester", schema=schema, unsafe_format=unsafe)


def fetched_dir(path: Path) -> Path:
    """The directory `load()` receives: a file's parent, or the MLflow directory itself."""
    return path.parent if path.is_file() else path


class Doubler:
    """A home-made estimator: skops can save it, lastgood must refuse to trust it."""

    def fit(self, features: Any, labels: Any = None) -> Doubler:
        self.n_features_in_ = int(features.shape[1])
        return self

    def predict(self, features: Any) -> Any:
        return features[:, 0] * 2
