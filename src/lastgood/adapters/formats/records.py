"""Between the wire and the model: records to matrices, model outputs to plain Python."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from lastgood.domain.errors import InvalidInput
from lastgood.domain.flavors import flavor as flavor_named
from lastgood.domain.versions import Column, Version

# numpy dtype kinds -> the domain's dtype names (used for outputs read from a fitted model).
KIND_DTYPES = {"i": "int64", "u": "int64", "f": "float64", "b": "bool", "U": "string",
               "S": "string", "O": "string"}


def unreadable(path: Path, what: str, exc: BaseException | str) -> InvalidInput:
    """The one-line refusal for a file that is empty, truncated or not what it claims."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InvalidInput(f"{path.name} is not a readable {what} file ({reason[:200]})",
                        fix=f"re-export the {what} model; the file may be truncated or damaged")


def default_columns(count: int) -> tuple[str, ...]:
    """scikit-learn's own names for unnamed features: x0, x1, …"""
    return tuple(f"x{i}" for i in range(count))


def scalar_input_names(version: Version) -> tuple[str, ...]:
    """The version's per-record scalar input columns, in schema order."""
    return tuple(c.name for c in version.schema.inputs if not c.shape)


def rows(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[list[Any]]:
    """Each record's values in column order; a missing column is the caller's mistake."""
    out: list[list[Any]] = []
    for index, record in enumerate(records):
        missing = [c for c in columns if c not in record]
        if missing:
            raise InvalidInput(
                f"record {index} has no {', '.join(repr(c) for c in missing[:5])}",
                fix=f"send every input column: {', '.join(columns)}")
        out.append([record[c] for c in columns])
    return out


def matrix(values: list[list[Any]], dtype: Any = None) -> np.ndarray[Any, Any]:
    """A 2-D array: numeric when every value is, else object (for encoders of strings)."""
    if dtype is not None:
        try:
            return np.asarray(values, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"inputs do not convert to {np.dtype(dtype).name}: {exc}",
                               fix="send numbers for numeric columns") from exc
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)


def to_python(value: Any) -> Any:
    """numpy scalars and arrays, dicts and lists as plain int/float/str/bool/list/dict."""
    if isinstance(value, Mapping):
        return {to_python(k): to_python(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [to_python(v) for v in value]
    return value


def per_record(outputs: Any, count: int) -> list[Any]:
    """Split a batch output (array, list, pandas Series or DataFrame) into one value per record."""
    columns = getattr(outputs, "columns", None)
    if columns is not None and hasattr(outputs, "to_dict"):  # a DataFrame: a row per record
        outputs = (outputs.iloc[:, 0].tolist() if len(columns) == 1
                   else outputs.to_dict(orient="records"))
    if isinstance(outputs, Mapping):  # several named outputs (an ONNX graph's): named per record
        return _named_per_record(outputs, count)
    values = list(outputs)
    if len(values) != count:
        raise InvalidInput(f"the model returned {len(values)} outputs for {count} records",
                           fix="check that the model predicts one output per input row")
    return [to_python(v) for v in values]


def _named_per_record(outputs: Mapping[str, Any], count: int) -> list[Any]:
    """{name: batch} as one {name: value} per record."""
    split = {str(name): per_record(batch, count) for name, batch in outputs.items()}
    return [{name: values[i] for name, values in split.items()} for i in range(count)]


def output_column(model: Any) -> Column:
    """The prediction column of a fitted estimator: its classes' dtype, else float64."""
    classes = getattr(model, "classes_", None)
    if isinstance(classes, np.ndarray):
        return Column(name="prediction", dtype=KIND_DTYPES.get(classes.dtype.kind, "string"))
    return Column(name="prediction", dtype="float64")


def estimator_inputs(model: Any) -> tuple[Column, ...]:
    """Input columns a fitted estimator knows: its feature names, else x0…x{n-1}.

    Estimators take numbers, so the columns are float64; a model that encodes strings or picks
    columns itself says nothing reliable about dtypes, so it gets no columns at all.
    """
    if takes_raw_columns(model):
        return ()
    return tuple(Column(name=n, dtype="float64") for n in feature_names(model))


def feature_names(model: Any) -> tuple[str, ...]:
    """The fitted feature order: named when fitted on a frame, else x0…x{n-1}."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return tuple(str(n) for n in names)
    count = getattr(model, "n_features_in_", None)
    return default_columns(count) if isinstance(count, int) else ()


RAW_COLUMN_HINTS = ("Encoder", "Vectorizer", "ColumnTransformer", "FunctionTransformer")


def takes_raw_columns(model: Any) -> bool:
    """Whether the model or any of its parts reads non-numeric or hand-picked columns."""
    get_params = getattr(model, "get_params", None)
    parts = [model, *(get_params(deep=True).values() if callable(get_params) else ())]
    return any(hint in type(part).__name__ for part in parts for hint in RAW_COLUMN_HINTS)


# The domain's dtypes -> what a pandas column of that dtype is built as. Strings stay Python
# objects (what a frame read from CSV or parquet hands an encoder); datetimes are parsed.
FRAME_DTYPES: dict[str, Any] = {"float64": "float64", "float32": "float32", "int64": "int64",
                                "int32": "int32", "bool": "bool", "string": object,
                                "category": object}


def frame(records: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> Any:
    """The records as a pandas DataFrame with the schema's column order and dtypes.

    Models fit on a DataFrame (feature names, columns picked by name, string encoders) get their
    inputs the way they were trained. An optional column a record leaves out is missing (NaN).
    Columns are built as numpy arrays and handed over uncopied: a pandas Series per column would
    cost several times more per request.
    """
    import pandas as pd

    data = {c.name: _array(pd, [_field(r, c, i) for i, r in enumerate(records)], c)
            for c in columns}
    return pd.DataFrame(data, copy=False)


def _field(record: Mapping[str, Any], column: Column, index: int) -> Any:
    if column.name in record:
        return record[column.name]
    if column.optional:
        return None
    raise InvalidInput(f"record {index} has no {column.name!r}",
                       fix="send every required input column")


def _array(pd: Any, values: list[Any], column: Column) -> Any:
    """One column; a value that does not convert is refused naming the column."""
    try:
        if column.dtype == "datetime" and not column.shape:
            return pd.to_datetime(pd.Series(values, dtype=object))
        wanted = FRAME_DTYPES.get(column.dtype, object)
        if column.shape:
            wanted = object
        elif None in values and wanted not in (object, "float64", "float32"):
            wanted = "float64" if column.dtype.startswith("int") else object
        if wanted is object:
            out = np.empty(len(values), dtype=object)
            for index, value in enumerate(values):  # a slice would broadcast nested lists
                out[index] = value
            return out
        return np.asarray(values, dtype=wanted)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"column {column.name!r} does not convert to {column.dtype}: "
                           f"{str(exc)[:120]}", fix=f"send {column.name} as {column.dtype}",
                           details={"field": column.name}) from exc


def fit_on_frame(model: Any) -> bool:
    """Whether the model was fit on a DataFrame: it knows its feature names or picks columns."""
    return getattr(model, "feature_names_in_", None) is not None or takes_raw_columns(model)


def import_for(flavor: str, module: str, *, what: str) -> ModuleType:
    """Import the library a flavor's loader needs, or refuse naming the command that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint, package = flavor_named(flavor).install_hint, module.split(".")[0]
        raise InvalidInput(f"{what} needs {package}, which is not installed on this host",
                           fix=f"install {package} on this host: {hint}",
                           details={"missing": module, "install": hint}) from exc
