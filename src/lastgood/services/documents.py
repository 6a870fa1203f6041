"""Turn user documents (parsed JSON/YAML) into domain records, with errors naming the fix."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Column, GoldenExample, Schema, check_column

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")


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
    """A schema document: {"inputs": [...], "outputs": [...]} or a bare list of input columns."""
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


def parse_golden(data: Any, *, source: str) -> tuple[GoldenExample, ...]:
    """Golden examples: a list of {"input": {...}, "output": value, "tolerance"?: float}."""
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"{source} holds no golden examples",
                           fix='write [{"input": {"x": 1.0}, "output": 0}, ...]')
    examples = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping) or not isinstance(item.get("input"), Mapping):
            raise InvalidInput(f"{source}: example {i} needs an 'input' object",
                               fix='write {"input": {"x": 1.0}, "output": 0}')
        if "output" not in item:
            raise InvalidInput(f"{source}: example {i} has no 'output'",
                               fix="give the expected output of every example")
        tol = item.get("tolerance", 1e-6)
        if not isinstance(tol, int | float) or tol < 0:
            raise InvalidInput(f"{source}: example {i} has a bad tolerance {tol!r}",
                               fix="use a number >= 0")
        examples.append(GoldenExample(dict(item["input"]), item["output"], float(tol)))
    return tuple(examples)


def columns_to_json(columns: Iterable[Column]) -> list[dict[str, Any]]:
    """Columns as the schema document shape (inverse of parse_columns)."""
    return [{"name": c.name, "dtype": c.dtype, **({"shape": list(c.shape)} if c.shape else {}),
             **({"optional": True} if c.optional else {})} for c in columns]
