"""scikit-learn models saved with skops: validated, loaded only with allow-listed types."""

from __future__ import annotations

import threading
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastgood.adapters.formats.records import (
    estimator_inputs,
    feature_names,
    fit_on_frame,
    frame,
    matrix,
    output_column,
    per_record,
    rows,
    takes_raw_columns,
    unreadable,
)
from lastgood.domain.errors import InvalidInput
from lastgood.domain.flavors import Inspection
from lastgood.domain.versions import Column

# scikit-learn internals skops does not trust by default but every tree, neighbours, neural
# network or calibrated model needs. They are plain data holders of scikit-learn itself; skops
# notes that a *crafted* Tree can make predict() read out of bounds, which is why only artifacts
# registered by the team (and verified by digest since) are ever loaded.
TRUSTED_SKOPS_TYPES = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.utils._bunch.Bunch",
})


def check_zip(path: Path) -> None:
    """A skops file is a zip with a schema.json; a cut or damaged one fails its CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "schema.json" not in archive.namelist():
                raise unreadable(path, "skops", "no schema.json inside the zip")
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise unreadable(path, "skops", exc) from exc
    if bad is not None:
        raise unreadable(path, "skops", f"member {bad} fails its checksum")


def load_skops(path: Path, *, also_trusted: frozenset[str] = frozenset()
               ) -> tuple[Any, tuple[str, ...]]:
    """The model and the allow-listed extra types it needed; refuses anything else."""
    import skops.io as sio

    needed = untrusted_types(path)
    refused = [t for t in needed if t not in TRUSTED_SKOPS_TYPES | also_trusted]
    if refused:
        raise InvalidInput(
            f"{path.name} needs types lastgood does not trust: {', '.join(refused)}",
            fix="build the model from scikit-learn's own estimators, or convert it to ONNX",
            details={"untrusted_types": refused})
    try:
        model = sio.load(path, trusted=needed)
    except Exception as exc:  # a damaged tree of objects fails in arbitrary ways
        raise unreadable(path, "skops", exc) from exc
    return model, tuple(needed)


def untrusted_types(path: Path) -> list[str]:
    """The types a skops file needs beyond skops' defaults, read without loading anything."""
    import skops.io as sio

    check_zip(path)
    try:
        return sorted(sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops raises many kinds for malformed schema.json
        raise unreadable(path, "skops", exc) from exc


def inspect_skops(path: Path, flavor: str) -> Inspection:
    """Validate a skops file by loading it safely; read its columns from the fitted model."""
    model, extra = load_skops(path)
    inputs = estimator_inputs(model)
    notes = [f"trusted scikit-learn internals: {', '.join(extra)}"] if extra else []
    if not inputs:
        notes.append("input columns unknown: pass --input-schema to check the data contract")
    schema = (inputs, (output_column(model),)) if inputs else None
    return Inspection(flavor=flavor, schema=schema, notes=tuple(notes))


@dataclass(frozen=True, slots=True)
class EstimatorPredictor:
    """Predictions of anything with a scikit-learn `predict(X)`.

    A model fit on a DataFrame gets one (its fitted column order, the schema's dtypes); any other
    gets a matrix of the records' values in `columns` order, or, when the version's input is one
    row tensor (MLflow's signature for an ndarray input example), a matrix of those rows.
    """

    model: Any
    columns: tuple[str, ...]
    frame_columns: tuple[Column, ...] | None = None
    named: bool = False  # fit with feature names, fed a matrix in that order (see below)
    tensor: bool = False  # `columns` is one field holding each record's whole feature row

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One plain output per record."""
        if not records:
            return []
        if self.frame_columns is not None:
            return per_record(self.model.predict(frame(records, self.frame_columns)),
                              len(records))
        values = rows(records, self.columns)
        features = matrix([list(row[0]) for row in values] if self.tensor else values)
        if not self.named:
            return per_record(self.model.predict(features), len(records))
        # The columns are in the fitted order and all numeric, so scikit-learn computes the
        # same as from a frame; it only warns that the matrix has no names.
        with _QUIET, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=NO_NAMES, category=UserWarning)
            return per_record(self.model.predict(features), len(records))


# catch_warnings swaps process-wide state; serialise the calls that need it.
_QUIET = threading.Lock()
NO_NAMES = "X does not have valid feature names"
NUMERIC = frozenset({"float64", "float32", "int64", "int32"})


def estimator_predictor(model: Any, declared: Sequence[Column]) -> EstimatorPredictor:
    """A predictor fed the way the model was trained: a DataFrame if it was fit on one."""
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(f"the loaded {type(model).__name__} has no predict()",
                           fix="register a fitted estimator or pipeline")
    scalars = tuple(c for c in declared if not c.shape)
    if len(declared) == 1 and len(declared[0].shape) == 1 and not fit_on_frame(model):
        return EstimatorPredictor(model=model, columns=(declared[0].name,), tensor=True)
    if fit_on_frame(model):
        columns = frame_columns(model, scalars)
        names = tuple(c.name for c in columns)
        if plain_numeric(model, columns):  # a matrix is ~5x cheaper than a frame per call
            return EstimatorPredictor(model, names, named=True)
        return EstimatorPredictor(model, names, columns)
    names = tuple(c.name for c in scalars) or feature_names(model)
    if not names:
        raise InvalidInput(f"the input columns of {type(model).__name__} are unknown",
                           fix="register the version with --input-schema naming its columns")
    return EstimatorPredictor(model=model, columns=names)


def plain_numeric(model: Any, columns: Sequence[Column]) -> bool:
    """A scikit-learn model that only knows its feature names, all of them numeric: it reads
    columns by position, so a matrix in the fitted order gives exactly what a frame would."""
    fitted = getattr(model, "feature_names_in_", None)
    return (type(model).__module__.startswith("sklearn.") and not takes_raw_columns(model)
            and fitted is not None and [str(n) for n in fitted] == [c.name for c in columns]
            and all(c.dtype in NUMERIC and not c.optional for c in columns))


def frame_columns(model: Any, declared: Sequence[Column]) -> tuple[Column, ...]:
    """The frame a model fit on one expects: its fitted order, the declared dtypes."""
    fitted = getattr(model, "feature_names_in_", None)
    by_name = {c.name: c for c in declared}
    if fitted is not None and len(fitted) == len(declared) \
            and not set(map(str, fitted)) <= set(by_name):
        return tuple(declared)  # the library renamed the features (lightgbm: spaces to _)
    if fitted is None:
        if not declared:
            raise InvalidInput(f"the input columns of {type(model).__name__} are unknown",
                               fix="register the version with --input-schema naming its columns")
        return tuple(declared)
    return tuple(by_name.get(str(n)) or Column(str(n), "float64") for n in fitted)
