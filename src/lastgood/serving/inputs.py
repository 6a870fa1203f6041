"""Request bodies: parse `{"records": [{column: value, ...}, ...]}` and check it against the live
version's input schema. Every refusal is an InvalidInput naming the offending field: a
SchemaMismatch (422) when the body parsed, a MalformedBody (400) when it is not JSON.

Wire format (documented in the gateway): a JSON object whose `records` member is a non-empty
list of objects, one per row, keyed by the input column names of the live version's schema.
A version registered without an input schema accepts any objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from lastgood.domain.errors import InvalidInput, SchemaMismatch
from lastgood.domain.versions import Column

__all__ = ["FLOAT_LIMITS", "MalformedBody", "NoDefaultModel", "as_mismatch", "check_records",
           "field_error", "float_misfit", "parse_records"]

INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# The smallest magnitude each float type rounds to infinity: a number at or past it overflows
# the column (Python compares ints and floats exactly, and NaN fails every comparison).
FLOAT_LIMITS = {"float64": 2**1024 - 2**970, "float32": 2**128 - 2**103, "float16": 65520}
# A number in a version without an input schema must at least fit a float64 or a 64-bit integer.
SCHEMALESS_INTS = (-(2**63), 2**64 - 1)


class MalformedBody(InvalidInput):
    """The body is not JSON at all (HTTP 400)."""


class NoDefaultModel(InvalidInput):
    """A route without a model name, on a replica serving several models (HTTP 400)."""


def field_error(path: str, message: str, fix: str) -> SchemaMismatch:
    return SchemaMismatch(f"{path}: {message}", fix=fix, details={"field": path})


def as_mismatch(exc: InvalidInput) -> InvalidInput:
    """A plain InvalidInput raised on a body that parsed (the model's own input check, say) as
    the SchemaMismatch it is; a more specific refusal keeps its class."""
    if type(exc) is not InvalidInput:
        return exc
    return SchemaMismatch(exc.message, fix=exc.fix, details=exc.details)


def parse_records(body: bytes) -> list[Mapping[str, Any]]:
    """The records of a request body; MalformedBody or InvalidInput naming the field."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, too deep
        raise MalformedBody(f"the body is not valid JSON ({str(exc)[:120]})",
                            fix='send {"records": [{"column": value, ...}]}') from None
    if not isinstance(payload, dict):
        raise field_error("body", "expected a JSON object",
                          'send {"records": [{"column": value, ...}]}')
    extra = sorted(set(payload) - {"records", "params"})  # params: see serving.params
    if extra:
        raise field_error(extra[0], "unexpected member", 'only "records" is accepted')
    records = payload.get("records")
    if not isinstance(records, list) or not records:
        raise field_error("records", "expected a non-empty list of objects",
                          'send {"records": [{"column": value, ...}]}')
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise field_error(f"records[{i}]", "expected an object", "send one object per row")
    return records


def _is_float(dtype: str) -> Callable[[Any], bool]:
    limit = FLOAT_LIMITS[dtype]
    return lambda v: (type(v) is float or type(v) is int) and -limit < v < limit


def float_misfit(value: int | float, dtype: str, *, called: str = "") -> str:
    """Why a number does not fit float type `dtype` (NaN, infinity, overflow), or "";
    `called` is the type's name on the wire (OIP's `FP32`), when not the dtype's."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN is not a number" if math.isnan(value) else f"{value} is not a finite number"
    if not -FLOAT_LIMITS[dtype] < value < FLOAT_LIMITS[dtype]:
        return f"{_short(value)} overflows {called or dtype}"
    return ""


def _is_int(dtype: str) -> Callable[[Any], bool]:
    low, high = INT_RANGES[dtype]
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


CHECKS: Mapping[str, Callable[[Any], bool]] = {
    "float64": _is_float("float64"), "float32": _is_float("float32"),
    "int64": _is_int("int64"), "int32": _is_int("int32"),
    "bool": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str), "category": lambda v: isinstance(v, str),
    "datetime": _is_datetime,
}


def _type_name(value: Any) -> str:
    names = {bool: "bool", int: "integer", float: "number", str: "string", list: "list",
             dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    """A value as errors quote it: a 400-digit integer as its first digits and its length."""
    if type(value) is int and abs(value) >= 10**30:
        text = str(value)
        return f"{text[:12]}... ({len(text.lstrip('-'))} digits)"
    return f"{value!r:.40}"


def _misfit(value: Any, dtype: str) -> str:
    """What is wrong with a value the check of `dtype` refused."""
    is_number = type(value) is int or type(value) is float
    if is_number and dtype in FLOAT_LIMITS:
        return float_misfit(value, dtype) or f"expected {dtype}"
    if type(value) is int and dtype in INT_RANGES:
        low, high = INT_RANGES[dtype]
        return f"{_short(value)} is out of {dtype}'s range {low} to {high}"
    if type(value) is float and not math.isfinite(value):
        return f"expected {dtype}, got the non-finite number {value}"
    return f"expected {dtype}, got {_type_name(value)} {_short(value)}"


def _check_value(path: str, value: Any, column: Column, shape: Sequence[int]) -> None:
    if shape:
        if not isinstance(value, list) or (shape[0] > 0 and len(value) != shape[0]):
            want = f"a list of {shape[0]}" if shape[0] > 0 else "a list"
            raise field_error(path, f"expected {want} ({column.dtype}), got {_type_name(value)}",
                              f"send {column.name} with shape {list(column.shape)}")
        for j, item in enumerate(value):
            _check_value(f"{path}[{j}]", item, column, shape[1:])
        return
    check = CHECKS.get(column.dtype)
    if check is not None and not check(value):
        raise field_error(path, _misfit(value, column.dtype),
                          f"send {column.name} as a finite {column.dtype}"
                          if column.dtype in FLOAT_LIMITS else
                          f"send {column.name} as {column.dtype}")


def check_records(records: Sequence[Mapping[str, Any]], columns: Sequence[Column], *,
                  path: str = "records") -> None:
    """Raise InvalidInput naming the first missing, extra or mistyped field; pass when fine.

    `path` names the records as the caller sent them (`records`, `rows`, `instances`, ...).
    """
    if not columns:
        for i, record in enumerate(records):
            for name, value in record.items():
                _check_number(f"{path}[{i}].{name}", value)
        return
    names = {c.name for c in columns}
    required = {c.name for c in columns if not c.optional}
    for i, record in enumerate(records):
        if not required <= record.keys() or not record.keys() <= names:
            missing = [c.name for c in columns if c.name not in record and not c.optional]
            if missing:
                raise field_error(f"{path}[{i}].{missing[0]}", "missing",
                                  f"send every input column: {', '.join(sorted(names))}")
            extra = sorted(set(record) - names)
            raise field_error(f"{path}[{i}].{extra[0]}", "unexpected field",
                              f"send only the input columns: {', '.join(sorted(names))}")
        for column in columns:
            if column.name in record and not (column.optional and record[column.name] is None):
                _check_value(f"{path}[{i}].{column.name}", record[column.name], column,
                             column.shape)


def _check_number(path: str, value: Any) -> None:
    """Without a schema, any number (at any depth) must be finite and fit a float64 or a
    64-bit integer: NaN, infinity and a 400-digit integer are never a usable input."""
    if type(value) is float:
        if not math.isfinite(value):
            raise field_error(path, f"{value} is not a finite number", "send finite numbers")
    elif type(value) is int:
        low, high = SCHEMALESS_INTS
        if not low <= value <= high:
            raise field_error(path, f"{_short(value)} does not fit a 64-bit number",
                              f"send integers from {low} to {high}")
    elif isinstance(value, list):
        for j, item in enumerate(value):
            _check_number(f"{path}[{j}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_number(f"{path}.{key}", item)
