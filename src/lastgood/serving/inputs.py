"""Request bodies: parse `{"records": [{column: value, ...}, ...]}` and check it against the live
version's input schema. Every refusal is an InvalidInput naming the offending field: a
SchemaMismatch (422) when the body parsed, a MalformedBody (400) when it is not JSON.

Wire format (documented in the gateway): a JSON object whose `records` member is a non-empty
list of objects, one per row, keyed by the input column names of the live version's schema.
A version registered without an input schema accepts any objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from lastgood.domain.errors import InvalidInput, SchemaMismatch
from lastgood.domain.versions import Column

__all__ = ["MalformedBody", "NoDefaultModel", "as_mismatch", "check_records", "field_error",
           "parse_records"]

INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
    "float64": _is_number, "float32": _is_number,
    "int64": _is_int("int64"), "int32": _is_int("int32"),
    "bool": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str), "category": lambda v: isinstance(v, str),
    "datetime": _is_datetime,
}


def _type_name(value: Any) -> str:
    names = {bool: "bool", int: "integer", float: "number", str: "string", list: "list",
             dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


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
        raise field_error(path, f"expected {column.dtype}, got {_type_name(value)} {value!r:.40}",
                          f"send {column.name} as {column.dtype}")


def check_records(records: Sequence[Mapping[str, Any]], columns: Sequence[Column], *,
                  path: str = "records") -> None:
    """Raise InvalidInput naming the first missing, extra or mistyped field; pass when fine.

    `path` names the records as the caller sent them (`records`, `rows`, `instances`, ...).
    """
    if not columns:
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
