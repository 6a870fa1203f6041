"""xgboost and lightgbm models as MLflow saves them, loaded with their own libraries.

Neither library is a dependency of lastgood: each comes with an extra (`lastgood[xgboost]`,
`lastgood[lightgbm]`), and a host without it gets a one-line refusal naming the command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastgood.adapters.formats.pickle_format import load_pickle, refuse
from lastgood.adapters.formats.records import (
    frame,
    import_for,
    matrix,
    per_record,
    rows,
    unreadable,
)
from lastgood.adapters.formats.skops_format import (
    estimator_predictor,
    load_skops,
    untrusted_types,
)
from lastgood.domain.errors import InvalidInput, UnsafeFormat
from lastgood.domain.flavors import Inspection
from lastgood.domain.versions import Column
from lastgood.ports import Predictor

XGB_ESTIMATORS = frozenset({"XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier",
                            "XGBRFRegressor"})
# What a skops file of a lightgbm scikit-learn estimator holds besides scikit-learn's own types.
LIGHTGBM_SKOPS_TYPES = frozenset({
    "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor",
    "lightgbm.sklearn.LGBMRanker", "collections.OrderedDict"})
SKOPS_SUFFIX, PICKLE_SUFFIXES = ".skops", (".pkl", ".pickle", ".joblib")


def inspect_booster(path: Path, flavor: str, *, allow_pickle: bool) -> Inspection:
    """Check a booster file without its library: it exists, is not empty, and is safe to read."""
    if not path.is_file() or path.stat().st_size == 0:
        raise InvalidInput(f"the {flavor} model file {path.name} is missing or empty",
                           fix=f"re-save the model with mlflow.{flavor}.save_model")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise refuse(path, f"a pickled {flavor} model")
        return Inspection(flavor=flavor, unsafe=True)
    if suffix == SKOPS_SUFFIX:
        refused = [t for t in untrusted_types(path) if t not in LIGHTGBM_SKOPS_TYPES
                   and not t.startswith(("sklearn.", "numpy."))]
        if refused:
            raise InvalidInput(f"{path.name} needs types lastgood does not trust: "
                               f"{', '.join(refused)}",
                               fix=f"save the model with mlflow.{flavor} from its own estimators")
    return Inspection(flavor=flavor)


def load_xgboost(path: Path, conf: Mapping[str, Any], inputs: Sequence[Column]) -> Predictor:
    """An xgboost model saved natively (ubj, json, deprecated binary) by mlflow.xgboost."""
    xgb = import_for("xgboost", "xgboost", what=f"the xgboost model {path.name}")
    kind = str(conf.get("model_class") or "xgboost.core.Booster").rsplit(".", 1)[-1]
    try:
        if kind in XGB_ESTIMATORS:
            model = getattr(xgb, kind)()
            model.load_model(str(path))
            return estimator_predictor(model, inputs)
        booster = xgb.Booster()
        booster.load_model(str(path))
    except (xgb.core.XGBoostError, ValueError, OSError) as exc:
        raise unreadable(path, "xgboost", exc) from exc
    return _booster_predictor(booster, booster.feature_names, inputs, xgb.DMatrix)


def load_lightgbm(path: Path, inputs: Sequence[Column], *, unsafe: bool) -> Predictor:
    """A lightgbm model: a scikit-learn estimator (skops or pickle) or a native Booster file."""
    lgb = import_for("lightgbm", "lightgbm", what=f"the lightgbm model {path.name}")
    suffix = path.suffix.lower()
    if suffix == SKOPS_SUFFIX:
        model, _ = load_skops(path, also_trusted=LIGHTGBM_SKOPS_TYPES)
        return estimator_predictor(model, inputs)
    if suffix in PICKLE_SUFFIXES:
        if not unsafe:
            raise UnsafeFormat(f"{path.name} is a pickled lightgbm model but the version is not "
                               "marked unsafe_format", fix="register it with --allow-pickle")
        return estimator_predictor(load_pickle(path), inputs)
    try:
        booster = lgb.Booster(model_file=str(path))
    except (lgb.basic.LightGBMError, ValueError, OSError) as exc:
        raise unreadable(path, "lightgbm", exc) from exc
    return _booster_predictor(booster, booster.feature_name(), inputs, None)


def _booster_predictor(booster: Any, names: Sequence[str] | None, inputs: Sequence[Column],
                       wrap: Any) -> BoosterPredictor:
    """Fed as MLflow's signature says: one row tensor (an ndarray input example) as a matrix of
    those rows, else a frame of the booster's named features."""
    if len(inputs) == 1 and len(inputs[0].shape) == 1:
        return BoosterPredictor(booster, (inputs[0],), wrap, tensor=True)
    return BoosterPredictor(booster, _columns(names, inputs), wrap)


def _columns(names: Sequence[str] | None, inputs: Sequence[Column]) -> tuple[Column, ...]:
    by_name = {c.name: c for c in inputs if not c.shape}
    if names:
        return tuple(by_name.get(n) or Column(n, "float64") for n in names)
    if by_name:
        return tuple(by_name.values())
    raise InvalidInput("the booster's input columns are unknown",
                       fix="register the version with --input-schema naming its columns")


@dataclass(frozen=True, slots=True)
class BoosterPredictor:
    """A raw Booster: fed a DataFrame of its feature columns, or with `tensor` a matrix of each
    record's one feature row (wrapped for xgboost's DMatrix)."""

    booster: Any
    columns: tuple[Column, ...]
    wrap: Any = None  # xgboost.DMatrix; lightgbm takes the frame itself
    tensor: bool = False  # `columns` is one field holding each record's whole feature row

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One plain output per record."""
        if not records:
            return []
        if self.tensor:
            values = rows(records, (self.columns[0].name,))
            features: Any = matrix([list(row[0]) for row in values])
        else:
            features = frame(records, self.columns)
        if self.wrap is not None:
            features = self.wrap(features)
        return per_record(self.booster.predict(features), len(records))
