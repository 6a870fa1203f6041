"""The models MLflow users have, written by MLflow's own `save_model` (never a hand-made MLmodel).

Each entry is one model in two versions (different hyper-parameters or training subsets, so their
predictions differ), every version saved with a signature (`infer_signature`) and an input
example, as MLflow recommends. Data is made on the spot from scikit-learn's bundled datasets.

    zoo = build_zoo(tmp_dir)          # ~1 minute: save_model infers requirements in a child
    for entry in zoo: entry.dirs, entry.flavor, entry.allow_pickle, entry.sample

Import as `from tests.mlflow_zoo import ...`.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

IRIS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
SAMPLE_ROWS = 8


@dataclass(frozen=True)
class ZooModel:
    """One model in two MLflow directories, and what lastgood should make of it."""

    name: str  # the registry's model name
    flavor: str  # the flavor lastgood should report for it
    allow_pickle: bool  # whether registering it needs --allow-pickle
    dirs: tuple[Path, Path]  # version 1, version 2
    sample: Any  # a DataFrame or a numpy array, fed to both lastgood and mlflow
    tensor_name: str = "float_input"  # the input's name when the sample is an array

    def records(self) -> list[dict[str, Any]]:
        """The sample as the `records` of a predict request."""
        return records_of(self.sample, tensor_name=self.tensor_name)

    def register_args(self, version: int) -> list[str]:
        """`lastgood register` as a user types it for one version."""
        pickle = ["--allow-pickle"] if self.allow_pickle else []
        return ["register", self.name, str(self.dirs[version - 1]), *pickle]


# -- data -----------------------------------------------------------------------------------

def iris_frame() -> tuple[pd.DataFrame, pd.Series]:
    """Iris as a data frame with snake_case columns (float64) and integer labels."""
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.data.set_axis(list(IRIS), axis=1)
    return frame, bunch.target.astype("int64")


def diabetes_frame() -> tuple[pd.DataFrame, pd.Series]:
    """Diabetes as a data frame (ten float64 columns) and a float target."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True)
    return bunch.data, bunch.target.astype("float64")


def tabular_frame() -> tuple[pd.DataFrame, pd.Series]:
    """A data frame with a string column and numeric ones, as a real tabular pipeline sees."""
    frame, labels = iris_frame()
    colors = np.array(["red", "green", "blue"])[(np.arange(len(frame)) * 7) % 3]
    table = pd.DataFrame({"color": pd.Series(colors, dtype=object),
                          "sepal_length": frame["sepal_length"],
                          "petal_width": frame["petal_width"],
                          "stems": (np.arange(len(frame)) % 5).astype("int64")})
    return table, labels


def spread(frame: pd.DataFrame, count: int = SAMPLE_ROWS) -> pd.DataFrame:
    """`count` rows spread over the whole frame (so every class shows up)."""
    return frame.iloc[:: max(1, len(frame) // count)].head(count).reset_index(drop=True)


def row_count(sample: Any) -> int:
    """Rows in a DataFrame, an array, or a dict of arrays (a graph's named inputs)."""
    if isinstance(sample, Mapping):
        return len(next(iter(sample.values())))
    return len(sample)


def records_of(sample: Any, *, tensor_name: str) -> list[dict[str, Any]]:
    """A DataFrame's rows as records; a 2-D array's rows as one tensor field per record; a dict
    of arrays as one field per named input."""
    if isinstance(sample, Mapping):
        return [{k: [plain(v) for v in np.asarray(arr)[i]] for k, arr in sample.items()}
                for i in range(row_count(sample))]
    if isinstance(sample, pd.DataFrame):
        return [{k: plain(v) for k, v in row.items()} for row in sample.to_dict("records")]
    return [{tensor_name: [plain(v) for v in row]} for row in np.asarray(sample)]


def plain(value: Any) -> Any:
    """numpy scalars as JSON-ready Python values."""
    return value.item() if isinstance(value, np.generic) else value


# -- saving with MLflow ---------------------------------------------------------------------

@contextmanager
def quiet() -> Iterator[None]:
    """MLflow warns about integer columns and pandas deprecations while saving; pytest turns
    warnings into errors, and these say nothing about lastgood."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class Versions:
    """Saves the two versions of one model; the second reuses the first's requirements.

    save_model infers requirements by importing the model in a child process (~2 s each);
    both versions are the same code on the same host, so the second is given the first's list
    (exactly what MLflow wrote) instead of inferring it again.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.name = root, name
        self.dirs: list[Path] = []

    def save(self, saver: Callable[..., Any], model: Any, **kwargs: Any) -> None:
        path = self.root / f"{self.name}-v{len(self.dirs) + 1}"
        if self.dirs:
            reqs = (self.dirs[0] / "requirements.txt").read_text().split()
            kwargs["pip_requirements"] = reqs
        with quiet():
            saver(model, str(path), **kwargs)
        self.dirs.append(path)

    def pair(self) -> tuple[Path, Path]:
        first, second = self.dirs
        return first, second


def signature(inputs: Any, outputs: Any) -> Any:
    from mlflow.models import infer_signature

    with quiet():
        return infer_signature(inputs, outputs)


def skops_types(model: Any) -> list[str]:
    """The types skops does not trust by default that this model holds: what MLflow needs."""
    import skops.io as sio

    return list(sio.get_untrusted_types(data=sio.dumps(model)))


def save_sklearn(versions: Versions, model: Any, frame: pd.DataFrame, *, fmt: str) -> None:
    import mlflow.sklearn

    extra: dict[str, Any] = {"serialization_format": fmt}
    if fmt == "skops":
        extra["skops_trusted_types"] = skops_types(model)
    versions.save(mlflow.sklearn.save_model, model,
                  signature=signature(frame, model.predict(frame)),
                  input_example=frame.head(3), **extra)


# -- the zoo --------------------------------------------------------------------------------

def sklearn_estimators() -> list[tuple[str, Callable[[int], Any], Callable[[], Any]]]:
    """(short name, estimator of version v, data) for the three plain scikit-learn models."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge

    return [
        ("logreg", lambda v: LogisticRegression(C=(0.01, 10.0)[v - 1], max_iter=2000),
         iris_frame),
        ("forest", lambda v: RandomForestClassifier(n_estimators=(3, 25)[v - 1],
                                                    max_depth=(1, 6)[v - 1], random_state=v),
         iris_frame),
        ("ridge", lambda v: Ridge(alpha=(100.0, 0.01)[v - 1]), diabetes_frame),
    ]


def build_sklearn(root: Path, short: str, fmt: str) -> ZooModel:
    """LogisticRegression, RandomForest or Ridge (`short`), as skops or as cloudpickle (`fmt`)."""
    make, data = {name: (make, data) for name, make, data in sklearn_estimators()}[short]
    frame, target = data()
    versions = Versions(root, f"{short}-{fmt}")
    for v in (1, 2):
        save_sklearn(versions, make(v).fit(frame, target), frame, fmt=fmt)
    return ZooModel(f"{short}-{fmt}", "sklearn", fmt == "cloudpickle", versions.pair(),
                    spread(frame))


def build_sklearn_proba(root: Path) -> ZooModel:
    """A classifier saved with pyfunc_predict_fn="predict_proba", the way MLflow users serve
    scores: MLflow answers each class's probability, never the label."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    frame, target = iris_frame()
    versions = Versions(root, "logreg-proba")
    for v in (1, 2):
        fitted = LogisticRegression(C=(0.01, 10.0)[v - 1], max_iter=2000).fit(frame, target)
        versions.save(mlflow.sklearn.save_model, fitted, serialization_format="skops",
                      skops_trusted_types=skops_types(fitted),
                      pyfunc_predict_fn="predict_proba",
                      signature=signature(frame, fitted.predict_proba(frame)),
                      input_example=frame.head(3))
    return ZooModel("logreg-proba", "python_function", False, versions.pair(), spread(frame))


def build_sklearn_ndarray(root: Path) -> ZooModel:
    """A logistic regression fit on a numpy matrix and saved with a numpy input example: MLflow
    writes one unnamed row tensor as its signature, the model knows only its feature count."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    frame, target = iris_frame()
    features = frame.to_numpy()
    versions = Versions(root, "logreg-ndarray")
    for v in (1, 2):
        fitted = LogisticRegression(C=(0.01, 10.0)[v - 1], max_iter=2000).fit(features, target)
        versions.save(mlflow.sklearn.save_model, fitted, serialization_format="skops",
                      skops_trusted_types=skops_types(fitted),
                      signature=signature(features, fitted.predict(features)),
                      input_example=features[:3])
    return ZooModel("logreg-ndarray", "sklearn", False, versions.pair(),
                    features[:: len(features) // SAMPLE_ROWS][:SAMPLE_ROWS], tensor_name="input")


def tabular_pipeline(version: int) -> Any:
    """ColumnTransformer by column name: OneHotEncoder on the string, StandardScaler on numbers."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("color", OneHotEncoder(handle_unknown="ignore"), ["color"]),
        ("numbers", StandardScaler(), ["sepal_length", "petal_width", "stems"]),
    ])
    return Pipeline([("columns", columns),
                     ("classify", LogisticRegression(C=(0.02, 5.0)[version - 1], max_iter=2000))])


def build_pipeline(root: Path) -> ZooModel:
    frame, target = tabular_frame()
    versions = Versions(root, "pipeline")
    for v in (1, 2):
        save_sklearn(versions, tabular_pipeline(v).fit(frame, target), frame, fmt="skops")
    return ZooModel("pipeline", "sklearn", False, versions.pair(), spread(frame))


ONNX_INPUT = "float_input"


def onnx_graph(model: Any, *, zipmap: bool, width: int = 4) -> Any:
    """A fitted classifier as ONNX, its input named ONNX_INPUT (float32 [N, width])."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    with quiet():
        return to_onnx(model, initial_types=[(ONNX_INPUT, FloatTensorType([None, width]))],
                       options={id(model): {"zipmap": zipmap}}, target_opset=17)


def onnx_outputs(graph: Any, features: np.ndarray[Any, Any]) -> dict[str, Any]:
    """What the graph answers, for the signature's outputs (plain tensors only)."""
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs() if o.type.startswith("tensor")]
    return dict(zip(names, session.run(names, {ONNX_INPUT: features}), strict=True))


def save_onnx(versions: Versions, graph: Any, example: np.ndarray[Any, Any]) -> None:
    """MLflow's ONNX flavor with a tensor signature: the normal numpy input example."""
    import mlflow.onnx

    versions.save(mlflow.onnx.save_model, graph,
                  signature=signature(example, onnx_outputs(graph, example)),
                  input_example=example[:3])


def build_onnx(root: Path, *, zipmap: bool) -> ZooModel:
    """A logistic regression on iris as ONNX, with or without ZipMap."""
    from sklearn.linear_model import LogisticRegression

    frame, target = iris_frame()
    features = frame.to_numpy(dtype=np.float32)
    name = "onnx-zipmap" if zipmap else "onnx"
    versions = Versions(root, name)
    for v in (1, 2):
        fitted = LogisticRegression(C=(0.01, 10.0)[v - 1], max_iter=2000).fit(features, target)
        save_onnx(versions, onnx_graph(fitted, zipmap=zipmap), features)
    return ZooModel(name, "onnx", False, versions.pair(),
                    features[:: len(features) // SAMPLE_ROWS][:SAMPLE_ROWS])


def build_xgboost(root: Path) -> ZooModel:
    """An XGBClassifier saved by mlflow.xgboost as model.ubj (no pickle)."""
    import mlflow.xgboost
    import xgboost

    frame, target = iris_frame()
    versions = Versions(root, "xgboost")
    for v in (1, 2):
        model = xgboost.XGBClassifier(n_estimators=(3, 30)[v - 1], max_depth=(2, 4)[v - 1],
                                      subsample=(0.5, 1.0)[v - 1], random_state=1, n_jobs=1)
        model.fit(frame, target)
        versions.save(mlflow.xgboost.save_model, model, model_format="ubj",
                      signature=signature(frame, model.predict(frame)),
                      input_example=frame.head(3))
    return ZooModel("xgboost", "xgboost", False, versions.pair(), spread(frame))


def build_lightgbm(root: Path) -> ZooModel:
    """A native lightgbm Booster (regression) saved by mlflow.lightgbm as model.lgb."""
    import lightgbm
    import mlflow.lightgbm

    frame, target = diabetes_frame()
    versions = Versions(root, "lightgbm")
    for v in (1, 2):
        train = frame.iloc[: (200, 442)[v - 1]]
        params = {"objective": "regression", "num_leaves": (4, 15)[v - 1], "verbose": -1,
                  "seed": v, "num_threads": 1}
        with quiet():
            booster = lightgbm.train(params, lightgbm.Dataset(train, target.iloc[: len(train)]),
                                     num_boost_round=(5, 40)[v - 1])
        versions.save(mlflow.lightgbm.save_model, booster,
                      signature=signature(frame, booster.predict(frame)),
                      input_example=frame.head(3))
    return ZooModel("lightgbm", "lightgbm", False, versions.pair(), spread(frame))


def build_boosters_ndarray(root: Path, library: str) -> ZooModel:
    """A native Booster (xgboost.train / lightgbm.train) fit on a numpy matrix and saved with a
    numpy input example: MLflow's signature is then one row tensor, not named columns."""
    import lightgbm
    import mlflow.lightgbm
    import mlflow.xgboost
    import xgboost

    frame, target = diabetes_frame()
    features, labels = frame.to_numpy(), target.to_numpy()
    name = f"{library}-ndarray"
    versions = Versions(root, name)
    for v in (1, 2):
        rounds = (4, 30)[v - 1]
        with quiet():
            if library == "xgboost":
                booster = xgboost.train({"max_depth": (2, 4)[v - 1], "nthread": 1},
                                        xgboost.DMatrix(features, labels), rounds)
                outputs = booster.predict(xgboost.DMatrix(features))
                save: Callable[..., Any] = mlflow.xgboost.save_model
            else:
                booster = lightgbm.train({"objective": "regression", "verbose": -1, "seed": v,
                                          "num_leaves": (4, 15)[v - 1], "num_threads": 1},
                                         lightgbm.Dataset(features, labels), rounds)
                outputs = booster.predict(features)
                save = mlflow.lightgbm.save_model
        versions.save(save, booster, signature=signature(features, outputs),
                      input_example=features[:3])
    return ZooModel(name, library, False, versions.pair(),
                    features[:: len(features) // SAMPLE_ROWS][:SAMPLE_ROWS], tensor_name="input")


def _python_model_class() -> type:
    import mlflow.pyfunc

    class ScoreCard(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        """A hand-written scorer: a weighted sum of two columns plus a bonus for a tier."""

        def __init__(self, weight: float, bonus: Mapping[str, float]) -> None:
            self.weight, self.bonus = weight, dict(bonus)

        def predict(self, context: Any, model_input: pd.DataFrame,
                    params: Any = None) -> pd.Series:
            tiers = model_input["tier"].map(self.bonus).fillna(0.0)
            score = model_input["amount"] * self.weight + model_input["visits"] + tiers
            return score.astype("float64")

    return ScoreCard


def pyfunc_frame() -> pd.DataFrame:
    rows = range(24)
    return pd.DataFrame({"amount": [round(3.5 + 1.25 * i, 2) for i in rows],
                         "visits": pd.Series([i % 7 for i in rows], dtype="int64"),
                         "tier": pd.Series([("gold", "silver", "bronze")[i % 3] for i in rows],
                                           dtype=object)})


def build_pyfunc(root: Path) -> ZooModel:
    """A custom mlflow.pyfunc.PythonModel, pickled by value as a notebook's class would be
    (python_model.pkl is a cloudpickle: registering it needs --allow-pickle)."""
    import cloudpickle
    import mlflow.pyfunc

    frame = pyfunc_frame()
    versions = Versions(root, "pyfunc")
    module = sys.modules[__name__]
    # A user's class lives in a notebook (__main__), which cloudpickle pickles by value; this
    # class lives in tests/, so ask for the same, or serving would need the tests importable.
    cloudpickle.register_pickle_by_value(module)
    try:
        for v in (1, 2):
            model = _python_model_class()((0.5, 2.0)[v - 1], {"gold": 10.0 * v, "silver": 3.0})
            versions.save(lambda m, path, **kw: mlflow.pyfunc.save_model(path, python_model=m,
                                                                         **kw),
                          model, signature=signature(frame, model.predict(None, frame)),
                          input_example=frame.head(3))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    return ZooModel("pyfunc", "python_function", True, versions.pair(), spread(frame))


def build_multioutput(root: Path) -> ZooModel:
    """A MultiOutputRegressor over Ridge: two outputs per row, MLflow answers a 2-D array."""
    import mlflow.sklearn
    from sklearn.linear_model import Ridge
    from sklearn.multioutput import MultiOutputRegressor

    frame, target = diabetes_frame()
    targets = np.column_stack([target.to_numpy(), target.to_numpy() * 0.5 + frame["bmi"] * 100])
    versions = Versions(root, "multioutput")
    for v in (1, 2):
        fitted = MultiOutputRegressor(Ridge(alpha=(100.0, 0.01)[v - 1])).fit(frame, targets)
        versions.save(mlflow.sklearn.save_model, fitted, serialization_format="skops",
                      skops_trusted_types=skops_types(fitted),
                      signature=signature(frame, fitted.predict(frame)),
                      input_example=frame.head(3))
    return ZooModel("multioutput", "sklearn", False, versions.pair(), spread(frame))


def two_input_graph(version: int) -> Any:
    """An ONNX graph of two named inputs a, b (float32 [N, 2]) answering y = a @ W + b."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32) * version
    nodes = [helper.make_node("MatMul", ["a", "W"], ["aw"]),
             helper.make_node("Add", ["aw", "b"], ["y"])]
    tensor = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 2]) for n in "aby"]
    graph = helper.make_graph(nodes, "two_inputs", tensor[:2], tensor[2:],
                              [numpy_helper.from_array(weights, "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def build_onnx_two_inputs(root: Path) -> ZooModel:
    """A graph of two named inputs, saved with a dict input example: MLflow answers {"y": ...}."""
    import mlflow.onnx

    rng = np.random.default_rng(7)
    sample = {"a": rng.normal(size=(24, 2)).astype(np.float32),
              "b": rng.normal(size=(24, 2)).astype(np.float32)}
    versions = Versions(root, "onnx-two-inputs")
    for v in (1, 2):
        graph = two_input_graph(v)
        outputs = {"y": sample["a"] @ (np.array([[1, 2], [3, 4]], np.float32) * v) + sample["b"]}
        versions.save(mlflow.onnx.save_model, graph, signature=signature(sample, outputs),
                      input_example={k: a[:3] for k, a in sample.items()})
    picked = {k: a[:SAMPLE_ROWS] for k, a in sample.items()}
    return ZooModel("onnx-two-inputs", "onnx", False, versions.pair(), picked)


def _frame_model_class() -> type:
    import mlflow.pyfunc

    class Banding(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        """A hand-written scorer answering a DataFrame: a score and a band (a string)."""

        def __init__(self, cut: float) -> None:
            self.cut = cut

        def predict(self, context: Any, model_input: pd.DataFrame,
                    params: Any = None) -> pd.DataFrame:
            score = model_input["amount"] * 0.1 * self.cut + model_input["visits"]
            band = np.where(score > self.cut, "high", "low")
            return pd.DataFrame({"score": score.astype("float64"),
                                 "band": pd.Series(band, dtype=object)})

    return Banding


def save_python_model(versions: Versions, model: Any, frame: pd.DataFrame, **kwargs: Any
                      ) -> None:
    """mlflow.pyfunc.save_model of a PythonModel defined here, pickled by value (as a
    notebook's class is)."""
    import cloudpickle
    import mlflow.pyfunc

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        versions.save(lambda m, path, **kw: mlflow.pyfunc.save_model(path, python_model=m,
                                                                     **kw),
                      model, input_example=frame.head(3), **kwargs)
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def build_pyfunc_frame(root: Path) -> ZooModel:
    """A PythonModel answering a DataFrame of a number and a string column."""
    frame = pyfunc_frame()
    versions = Versions(root, "pyfunc-frame")
    for v in (1, 2):
        model = _frame_model_class()((3.0, 6.0)[v - 1])
        save_python_model(versions, model, frame,
                          signature=signature(frame, model.predict(None, frame)))
    return ZooModel("pyfunc-frame", "python_function", True, versions.pair(), spread(frame))


def _params_model_class() -> type:
    import mlflow.pyfunc

    class Margin(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        """A scorer taking an inference param: how far each score is above `threshold`."""

        def __init__(self, weight: float) -> None:
            self.weight = weight

        def predict(self, context: Any, model_input: pd.DataFrame,
                    params: dict[str, Any] | None = None) -> pd.Series:
            threshold = float((params or {}).get("threshold", 50.0))
            score = model_input["amount"] * self.weight + model_input["visits"]
            return (score - threshold).astype("float64")

    return Margin


PARAMS_EXAMPLE = {"threshold": 60.0}


def build_pyfunc_params(root: Path) -> ZooModel:
    """A PythonModel with a params schema (infer_signature(params=...)); its input example
    carries params, so MLflow's serving_input_example.json sends them."""
    from mlflow.models import infer_signature

    frame = pyfunc_frame()
    versions = Versions(root, "pyfunc-params")
    for v in (1, 2):
        model = _params_model_class()((0.5, 2.0)[v - 1])
        with quiet():
            sig = infer_signature(frame, model.predict(None, frame), params={"threshold": 50.0})
        versions.save(lambda m, path, **kw: _save_with_params(m, path, frame, **kw), model,
                      signature=sig)
    return ZooModel("pyfunc-params", "python_function", True, versions.pair(), spread(frame))


def _save_with_params(model: Any, path: str, frame: pd.DataFrame, **kwargs: Any) -> None:
    import cloudpickle
    import mlflow.pyfunc

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        mlflow.pyfunc.save_model(path, python_model=model,
                                 input_example=(frame.head(3), PARAMS_EXAMPLE), **kwargs)
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def build_statsmodels(root: Path) -> ZooModel:
    """An OLS fit saved by mlflow.statsmodels: MLflow answers a Series, [{"0": value}, ...]."""
    import mlflow.statsmodels
    import statsmodels.api as sm

    frame, target = diabetes_frame()
    features = frame[["bmi", "bp", "s5"]]
    versions = Versions(root, "statsmodels")
    for v in (1, 2):
        rows = slice(0, (150, 442)[v - 1])
        fitted = sm.OLS(target.iloc[rows], sm.add_constant(features.iloc[rows])).fit()
        design = sm.add_constant(features)
        versions.save(mlflow.statsmodels.save_model, fitted,
                      signature=signature(design, fitted.predict(design)),
                      input_example=design.head(3))
    design = sm.add_constant(features)
    return ZooModel("statsmodels", "python_function", True, versions.pair(), spread(design))


def build_catboost(root: Path) -> ZooModel:
    """A CatBoostRegressor saved by mlflow.catboost (its own .cb format), served through
    pyfunc with catboost installed."""
    import catboost
    import mlflow.catboost

    frame, target = diabetes_frame()
    versions = Versions(root, "catboost")
    for v in (1, 2):
        model = catboost.CatBoostRegressor(iterations=(3, 30)[v - 1], depth=(2, 4)[v - 1],
                                           random_seed=v, verbose=False, thread_count=1,
                                           allow_writing_files=False)
        model.fit(frame, target)
        versions.save(mlflow.catboost.save_model, model,
                      signature=signature(frame, model.predict(frame)),
                      input_example=frame.head(3))
    return ZooModel("catboost", "python_function", False, versions.pair(), spread(frame))


BUILDERS: dict[str, Callable[[Path], ZooModel]] = {
    **{f"{short}-{fmt}": partial(build_sklearn, short=short, fmt=fmt)
       for short in ("logreg", "forest", "ridge") for fmt in ("skops", "cloudpickle")},
    "logreg-ndarray": build_sklearn_ndarray,
    "logreg-proba": build_sklearn_proba,
    "pipeline": build_pipeline,
    "onnx": partial(build_onnx, zipmap=False),
    "onnx-zipmap": partial(build_onnx, zipmap=True),
    "xgboost": build_xgboost,
    "lightgbm": build_lightgbm,
    "xgboost-ndarray": partial(build_boosters_ndarray, library="xgboost"),
    "lightgbm-ndarray": partial(build_boosters_ndarray, library="lightgbm"),
    "pyfunc": build_pyfunc,
    "multioutput": build_multioutput,
    "onnx-two-inputs": build_onnx_two_inputs,
    "pyfunc-frame": build_pyfunc_frame,
    "pyfunc-params": build_pyfunc_params,
    "statsmodels": build_statsmodels,
    "catboost": build_catboost,
}
ZOO_NAMES = tuple(BUILDERS)


def build_zoo(root: Path, names: Sequence[str] = ZOO_NAMES) -> list[ZooModel]:
    """The entries `names` (every one unless told), each in two versions, under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    return [BUILDERS[name](root) for name in names]


# -- what MLflow itself predicts ------------------------------------------------------------

def mlflow_predictions(path: Path, sample: Any,
                       params: Mapping[str, Any] | None = None) -> list[Any]:
    """`mlflow.pyfunc.load_model(path).predict(sample, params=params)`, one plain value per
    row: every output of the model, as lastgood's native route answers it (several outputs
    named per row)."""
    import mlflow.pyfunc

    with quiet():
        model = mlflow.pyfunc.load_model(str(path))
        result = model.predict(sample, params=dict(params)) if params else model.predict(sample)
    return per_row(result, row_count(sample))


def per_row(result: Any, count: int) -> list[Any]:
    """A batch answer (array, list, Series, DataFrame, or {name: batch}) as one plain value per
    row; a single-column frame gives its values."""
    if isinstance(result, Mapping):
        split = {str(k): per_row(v, count) for k, v in result.items()}
        return [{k: v[i] for k, v in split.items()} for i in range(count)]
    if isinstance(result, pd.DataFrame):
        if len(result.columns) == 1:
            return per_row(result.iloc[:, 0], count)
        return [to_plain(r) for r in result.to_dict(orient="records")]
    return [to_plain(v) for v in list(result)]


def to_plain(value: Any) -> Any:
    """numpy values, nested, as JSON-ready Python (mapping keys as JSON writes them)."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return plain(value)


def same_predictions(served: Sequence[Any], expected: Sequence[Any], *,
                     rel: float = 1e-5, abs_tol: float = 1e-6) -> bool:
    """Equal, floats within a small tolerance (float32 graphs, JSON round trips)."""
    if len(served) != len(expected):
        return False
    return all(_same(a, b, rel, abs_tol) for a, b in zip(served, expected, strict=True))


def _same(a: Any, b: Any, rel: float, abs_tol: float) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        a, b = to_plain(a), to_plain(b)
        return a.keys() == b.keys() and all(_same(a[k], b[k], rel, abs_tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, rel, abs_tol) for x, y in zip(a, b,
                                                                                   strict=True))
    if isinstance(a, list) and len(a) == 1:  # a [batch, 1] output served as one-element rows
        a = a[0]
    if isinstance(a, bool | str) or isinstance(b, bool | str):
        return bool(a == b)
    try:
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_tol)
    except (TypeError, ValueError):
        return bool(a == b)
