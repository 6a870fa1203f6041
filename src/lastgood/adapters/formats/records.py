"""Between the wire and the model: records to matrices, model outputs to plain Python."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lastgood.domain.errors import InvalidInput
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
    """Split a batch output into one plain value per record."""
    values = list(outputs)
    if len(values) != count:
        raise InvalidInput(f"the model returned {len(values)} outputs for {count} records",
                           fix="check that the model predicts one output per input row")
    return [to_python(v) for v in values]


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
