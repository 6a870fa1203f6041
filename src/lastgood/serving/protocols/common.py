"""Pieces the protocols share: rows, columns and objects to records, named in errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lastgood.domain.versions import Column, Version
from lastgood.serving.inputs import MalformedBody, field_error

__all__ = ["Handler", "Records", "Route3", "json_body", "records_from_columns",
           "records_from_rows"]

Handler = Callable[[Request], Awaitable[Response]]
Route3 = tuple[str, Handler, str]
Records = list[Mapping[str, Any]]


def json_body(body: bytes, fix: str) -> Any:
    """The decoded JSON of a body; MalformedBody (400) when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, too deep
        raise MalformedBody(f"the body is not valid JSON ({str(exc)[:120]})", fix=fix) from None


def _names(columns: Sequence[Column]) -> str:
    return ", ".join(c.name for c in columns)


def record_of_row(row: Any, columns: Sequence[Column], where: str) -> Mapping[str, Any]:
    """One row as a record: an object as it is; a list of values in schema order; for a model
    with one input, the value itself (a scalar or that input's array)."""
    if isinstance(row, dict):
        return row
    if len(columns) == 1:
        only = columns[0]
        if not only.shape and isinstance(row, list) and len(row) == 1:
            return {only.name: row[0]}
        return {only.name: row}
    if not columns:
        raise field_error(where, "this version has no input schema, so rows need names",
                          "send objects keyed by column name")
    if isinstance(row, list) and len(row) == len(columns) and not any(c.shape for c in columns):
        return dict(zip((c.name for c in columns), row, strict=True))
    raise field_error(where, f"expected an object or a list of {len(columns)} values",
                      f"send the inputs {_names(columns)} in that order, or by name")


def records_from_rows(rows: Any, version: Version, where: str) -> Records:
    """A non-empty list of rows (objects, value lists or single values) as records."""
    if not isinstance(rows, list) or not rows:
        raise field_error(where, "expected a non-empty list", f"send {where}: [row, ...]")
    columns = version.schema.inputs
    return [record_of_row(row, columns, f"{where}[{i}]") for i, row in enumerate(rows)]


def records_from_columns(columns: Mapping[str, Any], where: str) -> Records:
    """`{"column": [v0, v1, ...], ...}` (one list per column, equal lengths) as records."""
    if not columns:
        raise field_error(where, "expected at least one column", f"send {where}: {{col: [...]}}")
    lengths = {name: len(v) if isinstance(v, list) else -1 for name, v in columns.items()}
    bad = next((n for n, size in lengths.items() if size < 1), None)
    if bad is not None:
        raise field_error(f"{where}.{bad}", "expected a non-empty list of values",
                          "send one list per column")
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{n}: {size}" for n, size in lengths.items())
        raise field_error(where, f"columns have different lengths ({sizes})",
                          "send the same number of values for every column")
    count = next(iter(lengths.values()))
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]
