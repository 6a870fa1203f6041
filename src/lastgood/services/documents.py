"""Turn user documents (parsed JSON/YAML) into domain records, with errors naming the fix."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Column, GoldenExample, GoldenSource, Schema, check_column

COLSPEC_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32",
                  "boolean": "bool", "string": "string", "datetime": "datetime"}
TENSOR_DTYPES = {"float64": "float64", "float32": "float32", "int64": "int64", "int32": "int32",
                 "bool": "bool", "str": "string", "object": "string"}
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")
PIN_PATTERN = _PIN  # an exact requirement pin, `pkg==1.2.3` (the API publishes it)


def parse_pairs(items: Iterable[str], *, flag: str, example: str) -> dict[str, str]:
    """`K=V` strings from repeated flags into a dict; a malformed one names the flag."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInput(f"{flag} {item!r} is not KEY=VALUE",
                               fix=f"write e.g. {flag} {example}")
        out[key.strip()] = value.strip()
    return out


def parse_metrics(items: Iterable[str], *, flag: str = "--metric") -> dict[str, float]:
    """`name=number` strings into finite floats."""
    out: dict[str, float] = {}
    for key, value in parse_pairs(items, flag=flag, example="accuracy=0.93").items():
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise InvalidInput(f"{flag} {key}={value!r} is not a finite number",
                               fix=f"write e.g. {flag} {key}=0.93")
        out[key] = number
    return out


def parse_requirements(items: Iterable[str]) -> dict[str, str]:
    """`pkg==1.2.3` pins into a dict."""
    out: dict[str, str] = {}
    for item in items:
        m = _PIN.match(item)
        if not m:
            raise InvalidInput(f"--requires {item!r} is not an exact pin",
                               fix="write e.g. --requires scikit-learn==1.5.2")
        out[m.group(1)] = m.group(2)
    return out


def parse_columns(data: Any, *, source: str, key: str) -> tuple[Column, ...]:
    """A list of {"name", "dtype", "shape"?} objects into columns."""
    if not isinstance(data, list):
        raise InvalidInput(f"{source}: '{key}' must be a list of columns",
                           fix='write e.g. [{"name": "age", "dtype": "float64"}]')
    columns = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise InvalidInput(f"{source}: {key}[{i}] needs a string 'name' and a 'dtype'",
                               fix='write e.g. {"name": "age", "dtype": "float64"}')
        shape = item.get("shape") or ()
        if not isinstance(shape, list | tuple) or not all(isinstance(n, int) for n in shape):
            raise InvalidInput(f"{source}: {key}[{i}].shape must be a list of integers",
                               fix="write e.g. \"shape\": [3] or leave it out")
        unknown = set(item) - {"name", "dtype", "shape"}
        if unknown:
            raise InvalidInput(f"{source}: {key}[{i}] has unknown keys {sorted(unknown)}",
                               fix="use only name, dtype and shape")
        columns.append(check_column(Column(str(item["name"]), str(item.get("dtype", "")),
                                           tuple(shape))))
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{source}: duplicate column names in '{key}'",
                           fix="give every column a distinct name")
    return tuple(columns)


def parse_schema(data: Any, *, source: str) -> Schema:
    """A schema document: {"inputs": [...], "outputs": [...]}, a bare list of input columns, or
    an MLflow signature (its `inputs` JSON, or colspecs with `"type": "double"`)."""
    if is_mlflow_signature(data):
        return mlflow_schema(data, source=source)
    if isinstance(data, list):
        return Schema(inputs=parse_columns(data, source=source, key="inputs"))
    if not isinstance(data, Mapping) or "inputs" not in data:
        raise InvalidInput(f"{source} is not a schema",
                           fix='write {"inputs": [{"name": "x", "dtype": "float64"}], '
                               '"outputs": [...]}')
    unknown = set(data) - {"inputs", "outputs"}
    if unknown:
        raise InvalidInput(f"{source}: unknown keys {sorted(unknown)}",
                           fix="a schema has only 'inputs' and 'outputs'")
    return Schema(inputs=parse_columns(data["inputs"], source=source, key="inputs"),
                  outputs=parse_columns(data.get("outputs", []), source=source, key="outputs"))


def parse_env_columns(data: Any, *, source: str, key: str) -> tuple[Column, ...]:
    """An env's feature schema (or expected outputs): lastgood columns or an MLflow signature
    (its inputs, or its outputs for `expected_outputs`)."""
    if not is_mlflow_signature(data):
        return parse_columns(data, source=source, key=key)
    if isinstance(data, Mapping) and key == "expected_outputs":
        return mlflow_schema(data, source=source).outputs
    return mlflow_schema(data, source=source).inputs


def is_mlflow_signature(data: Any) -> bool:
    """MLflow writes specs with a `type` (double, long, tensor…), never a `dtype`."""
    if isinstance(data, Mapping) and "inputs" in data:
        inputs = data["inputs"]
        if isinstance(inputs, str):
            return True
        data = inputs
    return isinstance(data, list) and bool(data) and all(
        isinstance(i, Mapping) and "type" in i and "dtype" not in i for i in data)


def mlflow_schema(data: Any, *, source: str) -> Schema:
    """An MLflow signature as a schema; types lastgood cannot express are refused."""
    inputs, outputs = (data.get("inputs"), data.get("outputs")) if isinstance(data, Mapping) \
        else (data, None)
    try:
        columns = spec_columns(inputs, single="input")
        produced = spec_columns(outputs, single="prediction")
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{source} is not a readable MLflow signature: {exc}",
                           fix="pass the `signature` of an MLmodel file, or lastgood's own "
                               "schema") from exc
    if columns is None or produced is None:
        known = ", ".join(sorted(COLSPEC_DTYPES))
        raise InvalidInput(f"{source} has an MLflow type lastgood cannot express",
                           fix=f"use column types {known}, or numeric/bool/str tensors")
    return Schema(inputs=tuple(check_column(c) for c in columns),
                  outputs=tuple(check_column(c) for c in produced))


def parse_golden(data: Any, *, source: str) -> tuple[GoldenExample, ...]:
    """Golden examples: a list of {"input": {...}, "output"?: value, "tolerance"?: number or
    {output: number}, "params"?: {...}}, or an MLflow input example (split, records, columns or
    tensors, and its "params"), with its outputs under "predictions" when known. An example
    without an output has it recorded at registration."""
    if _mlflow_example(data):
        return mlflow_golden(data, source=source)
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"{source} holds no golden examples",
                           fix='write [{"input": {"x": 1.0}, "output": 0}, ...]')
    examples = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping) or not isinstance(item.get("input"), Mapping):
            raise InvalidInput(f"{source}: example {i} needs an 'input' object",
                               fix='write {"input": {"x": 1.0}, "output": 0}')
        tol, per_output = _tolerances(item.get("tolerance", 1e-6), f"{source}: example {i}")
        examples.append(GoldenExample(dict(item["input"]), item.get("output"), tol,
                                      tolerances=per_output,
                                      params=_params(item.get("params"),
                                                     f"{source}: example {i}")))
    return tuple(examples)


def _tolerances(value: Any, where: str) -> tuple[float, dict[str, float]]:
    """(the tolerance, the ones per output): a number, or {output: number} (the other
    outputs keep the default)."""
    given = value if isinstance(value, Mapping) else {"": value}
    for name, tol in given.items():
        if not isinstance(tol, int | float) or isinstance(tol, bool) or not tol >= 0 \
                or not math.isfinite(tol):
            what = f" of output {name!r}" if name else ""
            raise InvalidInput(f"{where} has a bad tolerance{what} {tol!r}",
                               fix='use a number >= 0, or {"probabilities": 1e-4} per output')
    if isinstance(value, Mapping):
        return 1e-6, {str(k): float(v) for k, v in value.items()}
    return float(value), {}


def _params(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"{where} has params that are not an object",
                           fix='write "params": {"threshold": 60.0}')
    return dict(value)


def _mlflow_example(data: Any) -> bool:
    if isinstance(data, Mapping):
        return bool(set(data) & {"dataframe_split", "dataframe_records", "inputs", "instances",
                                 "columns", "predictions"})
    return isinstance(data, list) and bool(data) and all(
        isinstance(r, Mapping) and "input" not in r for r in data)


def mlflow_golden(data: Any, *, source: str) -> tuple[GoldenExample, ...]:
    """An MLflow input example (its "params" and "predictions", if given) as golden examples."""
    body = {k: v for k, v in data.items() if k not in ("predictions", "params")} \
        if isinstance(data, Mapping) else data
    records = example_records(body)
    if not records:
        raise InvalidInput(f"{source} is an input example lastgood cannot read",
                           fix="write it as MLflow does: {\"dataframe_split\": {\"columns\": "
                               "[...], \"data\": [[...]]}} or a list of records")
    params = _params(data.get("params"), source) if isinstance(data, Mapping) else {}
    outputs = data.get("predictions") if isinstance(data, Mapping) else None
    if outputs is None:
        return tuple(GoldenExample(r, None, source=GoldenSource.UNCHECKED, params=params)
                     for r in records)
    if not isinstance(outputs, list) or len(outputs) != len(records):
        raise InvalidInput(f"{source}: \"predictions\" must be a list of {len(records)} "
                           "outputs, one per input row", fix="give one prediction per row")
    return tuple(GoldenExample(r, out, params=params)
                 for r, out in zip(records, outputs, strict=True))


# -- MLflow's own documents: signatures and input examples ------------------------------------

def spec_columns(text: Any, *, single: str) -> tuple[Column, ...] | None:
    """mlflow column or tensor specs (JSON text in MLmodel) as columns; None if unexpressible."""
    if not text:
        return ()
    specs = json.loads(text) if isinstance(text, str) else text
    columns: list[Column] = []
    for index, spec in enumerate(specs):
        name = str(spec.get("name") or (single if len(specs) == 1 or not single
                                        else f"{single}_{index}"))
        if spec.get("type") == "tensor":
            tensor = spec.get("tensor-spec") or {}
            dtype = TENSOR_DTYPES.get(str(tensor.get("dtype")))
            shape = tuple(int(d) for d in (tensor.get("shape") or [])[1:])
        else:
            dtype, shape = COLSPEC_DTYPES.get(str(spec.get("type"))), ()
        if dtype is None:
            return None
        columns.append(Column(name=name, dtype=dtype, shape=shape,
                              optional=spec.get("required") is False))
    return tuple(columns)


def example_records(data: Any, inputs: Sequence[Column] = ()) -> list[dict[str, Any]] | None:
    """Records from mlflow's example layouts: split, records, columnar, tensors or one record."""
    if isinstance(data, Mapping):
        for key in ("dataframe_split", "dataframe_records", "inputs", "instances"):
            if key in data:
                return example_records(data[key], inputs)
        if isinstance(data.get("columns"), list) and isinstance(data.get("data"), list):
            return [dict(zip(data["columns"], row, strict=True)) for row in data["data"]]
        if data and all(isinstance(v, list) for v in data.values()):
            length = {len(v) for v in data.values()}
            if len(length) == 1:
                return [{k: v[i] for k, v in data.items()} for i in range(length.pop())]
            return None
        return [dict(data)] if data else None
    if isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        return [dict(r) for r in data]
    if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
        return tensor_records(data, inputs)
    return None


def tensor_records(rows: list[list[Any]], inputs: Sequence[Column]) -> list[dict[str, Any]] | None:
    """Rows of an ndarray example as records: one tensor column, or one value per column."""
    if len(inputs) == 1 and inputs[0].shape:
        return [{inputs[0].name: row} for row in rows]
    names = [c.name for c in inputs if not c.shape]
    if names and all(len(row) == len(names) for row in rows):
        return [dict(zip(names, row, strict=True)) for row in rows]
    return None
