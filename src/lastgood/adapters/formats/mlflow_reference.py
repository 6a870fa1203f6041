"""The reference for an MLflow directory's outputs: MLflow's own `mlflow.pyfunc`.

At registration the golden outputs are recorded by `mlflow.pyfunc.load_model(dir).predict`, not
by lastgood's native loader; the native path is then held to them, on the golden examples and on
rows generated from them, and where it answers anything else the version serves through pyfunc.
Runs in the recording child process (see adapters.system.smoke), never in a server.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lastgood.adapters.formats.mlflow_dir import MLflowModel, pyfunc_unpickles
from lastgood.adapters.formats.records import per_record
from lastgood.domain.versions import Column, GoldenExample, Version, golden_matches
from lastgood.ports import Predictor
from lastgood.services.golden_runs import golden_outputs

PYFUNC = "python_function"
GENERATED_ROWS = 200
TOLERANCE = 1e-6
SEED = 19
NOT_INSTALLED = ("golden outputs recorded by lastgood's own loader, not checked against "
                 "mlflow.pyfunc: mlflow is not installed on the registering host "
                 "(pip install 'lastgood[mlflow]')")
NOT_ALLOWED = ("golden outputs recorded by lastgood's own loader, not checked against "
               "mlflow.pyfunc: loading it would unpickle files (register with --allow-pickle "
               "to check)")


def reference_answer(model: MLflowModel, version: Version, native: Mapping[str, Any],
                     predictor: Predictor | None) -> dict[str, Any]:
    """The recording child's answer: the reference's outputs, and which path must serve."""
    failed = "error" in native  # then the native failure is the answer, without a note
    if pyfunc_unpickles(model) and not version.unsafe_format:
        return dict(native) if failed else {**native, "reference": NOT_ALLOWED}
    try:
        import mlflow.pyfunc
    except ImportError:
        return dict(native) if failed else {**native, "reference": NOT_INSTALLED}
    start = time.perf_counter()
    loaded = mlflow.pyfunc.load_model(str(model.root))
    loaded_at = time.perf_counter()
    records = [dict(g.inputs) for g in version.golden]
    reference = Reference(loaded, version.schema.inputs)
    expected = golden_outputs(reference, version.golden, version.schema.params)
    own = {"load_ms": (loaded_at - start) * 1000,
           "predict_ms": (time.perf_counter() - loaded_at) * 1000, "outputs": expected,
           "output_form": output_form(reference.last)}
    if version.flavor == PYFUNC:
        return {**own, "reference": "golden outputs recorded by mlflow.pyfunc (the reference)"}
    why = disagreement(native, predictor, loaded, records, version)
    if why:
        return {**own, "serve_with": PYFUNC,
                "reference": f"serving through mlflow.pyfunc: the native {version.flavor} "
                             f"path {why}"}
    return {**native, "outputs": expected, "output_form": own["output_form"],
            "reference": f"golden outputs recorded by mlflow.pyfunc; the native "
                         f"{version.flavor} path reproduces them and {GENERATED_ROWS} rows "
                         "generated from them"}


class Reference:
    """mlflow.pyfunc as a predictor of records (with params, when an example carries them);
    `last` keeps its last raw answer, whose form decides the JSON MLflow answers."""

    def __init__(self, loaded: Any, columns: Sequence[Column]) -> None:
        self.loaded, self.columns, self.last = loaded, columns, None

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        self.last = self.loaded.predict(reference_input(records, self.columns))
        return per_record(self.last, len(records))

    def predict_with_params(self, records: Sequence[Mapping[str, Any]],
                            params: Mapping[str, Any]) -> list[Any]:
        self.last = self.loaded.predict(reference_input(records, self.columns),
                                        params=dict(params))
        return per_record(self.last, len(records))


def output_form(raw: Any) -> str:
    """How mlflow.pyfunc answered a batch, which decides the JSON `mlflow models serve`
    answers: `dict` ({name: batch}), `frame` (records), `frame:COLUMN` (one column: lastgood
    keeps its values), `series:NAME` (records of one column), else `array` (a list per row)."""
    columns = getattr(raw, "columns", None)
    if columns is not None and hasattr(raw, "to_dict"):
        return f"frame:{columns[0]}" if len(columns) == 1 else "frame"
    if hasattr(raw, "to_frame"):  # a pandas Series: MLflow answers it as one-column records
        return f"series:{0 if raw.name is None else raw.name}"
    return "dict" if isinstance(raw, Mapping) else "array"


def reference_outputs(loaded: Any, records: Sequence[Mapping[str, Any]],
                      columns: Sequence[Column]) -> list[Any]:
    """What mlflow.pyfunc answers for the records, one plain output per record."""
    return per_record(loaded.predict(reference_input(records, columns)), len(records))


def reference_input(records: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> Any:
    """The records as MLflow's scoring server hands them to the model: a DataFrame of columns,
    one array for a single tensor input, a dict of arrays for several."""
    tensors = [c for c in columns if c.shape]
    if tensors and len(tensors) == len(columns):
        arrays = {c.name: np.asarray([r[c.name] for r in records], dtype=_numpy_dtype(c))
                  for c in tensors}
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays
    import pandas as pd

    return pd.DataFrame([dict(r) for r in records])


def _numpy_dtype(column: Column) -> Any:
    return {"string": object, "category": object, "datetime": object}.get(column.dtype,
                                                                         column.dtype)


def disagreement(native: Mapping[str, Any], predictor: Predictor | None, loaded: Any,
                 records: Sequence[Mapping[str, Any]], version: Version) -> str:
    """Why the native path is not the reference ("" when it reproduces it)."""
    if "error" in native or predictor is None:
        return f"fails where mlflow.pyfunc answers ({native.get('error', 'not loaded')})"
    examples = (version.golden if len(version.golden) == len(records) else
                tuple(GoldenExample(r, None) for r in records))
    expected = golden_outputs(Reference(loaded, version.schema.inputs), examples,
                              version.schema.params)
    found = _first_difference(native["outputs"], expected, "golden example")
    if found:
        return found
    rows = generated_rows(records, version.schema.inputs, GENERATED_ROWS)
    try:
        theirs = reference_outputs(loaded, rows, version.schema.inputs)
    except Exception:  # the reference refuses generated rows: nothing to hold
        return ""
    try:
        mine = predictor.predict(rows)
    except Exception as exc:  # any failure of the native path is a difference
        return f"fails on rows mlflow.pyfunc answers ({type(exc).__name__}: {str(exc)[:120]})"
    return _first_difference(mine, theirs, "generated row")


def _first_difference(mine: Sequence[Any], theirs: Sequence[Any], what: str) -> str:
    if len(mine) != len(theirs):
        return f"gives {len(mine)} outputs for {len(theirs)} {what}s"
    for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        if not golden_matches(b, a, TOLERANCE):
            return (f"answers {_short(a)} where mlflow.pyfunc answers {_short(b)} "
                    f"({what} {index})")
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def generated_rows(records: Sequence[Mapping[str, Any]], columns: Sequence[Column],
                   count: int) -> list[dict[str, Any]]:
    """`count` rows in the examples' ranges and categories, each column of its own dtype."""
    rng = np.random.default_rng(SEED)
    names = [c.name for c in columns] or list(records[0])
    dtypes = {c.name: c.dtype for c in columns}
    drawn = {name: _draw(rng, [r.get(name) for r in records], dtypes.get(name, ""), count)
             for name in names if any(name in r for r in records)}
    return [{name: values[i] for name, values in drawn.items()} for i in range(count)]


def _draw(rng: np.random.Generator, seen: list[Any], dtype: str, count: int) -> list[Any]:
    """Values like `seen`: numbers in their range, tensors element by element, else a choice."""
    present = [v for v in seen if v is not None]
    if present and all(isinstance(v, list) for v in present):
        try:
            arrays = np.asarray(present, dtype=np.float64)
        except (TypeError, ValueError):
            return [present[i % len(present)] for i in range(count)]
        low, high = arrays.min(axis=0), arrays.max(axis=0)
        out = rng.uniform(low, high, size=(count, *low.shape))
        drawn: list[Any] = (np.rint(out).astype(np.int64) if dtype.startswith("int")
                            else out).tolist()
        return drawn
    numbers = [v for v in present if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(present):
        low, high = min(numbers), max(numbers)
        if dtype.startswith("int") or all(isinstance(v, int) for v in numbers):
            return [int(v) for v in rng.integers(int(low), int(high) + 1, size=count)]
        return [float(v) for v in rng.uniform(low, high, size=count)]
    pool = present or [None]
    return [pool[int(i)] for i in rng.integers(0, len(pool), size=count)]
