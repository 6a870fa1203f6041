"""Open Inference Protocol v2 tensors read as records of the answering version's input schema:
one tensor per input (by name), or one [N, k] matrix of k scalar inputs in schema order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lastgood.domain.versions import Column, Version
from lastgood.serving.inputs import field_error
from lastgood.serving.protocols.common import Records
from lastgood.serving.protocols.oip_tensors import DATATYPES, Tensor, datatype_of

__all__ = ["tensors_to_records"]

# a schema column's dtype -> the tensor kinds that may feed it
FITS: Mapping[str, frozenset[str]] = {
    "float64": frozenset({"float", "int"}), "float32": frozenset({"float", "int"}),
    "int64": frozenset({"int"}), "int32": frozenset({"int"}), "bool": frozenset({"bool"}),
    "string": frozenset({"bytes"}), "category": frozenset({"bytes"}),
    "datetime": frozenset({"bytes"}),
}


def _nest(flat: list[Any], shape: Sequence[int]) -> list[Any]:
    """Row-major values in nested lists of `shape`."""
    if len(shape) <= 1:
        return flat
    step = math.prod(shape[1:])
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _rows(tensor: Tensor, column: Column | None) -> list[Any]:
    """Per-row values of a tensor whose first dimension is the batch."""
    rest = tensor.shape[1:]
    want = column.shape if column is not None else None
    if column is not None and not want and rest in ((), (1,)):
        return tensor.values  # a scalar column: [N] or [N, 1]
    if want is not None and (len(rest) != len(want) or any(
            w >= 0 and w != r for w, r in zip(want, rest, strict=True))):
        wanted = [-1, *(w if w >= 0 else -1 for w in want)]
        raise field_error(f"{tensor.where}.shape", f"{list(tensor.shape)} does not fit "
                          f"the input's shape {wanted}", "send one row per record")
    return _nest(tensor.values, tensor.shape)


def _check_fit(tensor: Tensor, column: Column) -> None:
    kind = DATATYPES[tensor.datatype][1]
    if kind not in FITS.get(column.dtype, frozenset(DATATYPES)):
        raise field_error(f"{tensor.where}.datatype", f"{tensor.datatype} does not fit the "
                          f"input {column.name!r} ({column.dtype})",
                          f"send it as {datatype_of(column)}")


def _by_column(tensors: Sequence[Tensor], columns: Sequence[Column]) -> Records:
    named = {c.name: c for c in columns}
    for tensor in tensors:
        if tensor.name not in named:
            raise field_error(tensor.where, "no input has this name",
                              f"the model's inputs are {', '.join(named)}")
    given = {t.name for t in tensors}
    missing = [c.name for c in columns if c.name not in given and not c.optional]
    if missing:
        raise field_error(f"inputs.{missing[0]}", "missing",
                          f"send one tensor per input: {', '.join(named)}")
    return _zip_rows({t.name: (t, named[t.name]) for t in tensors})


def _zip_rows(tensors: Mapping[str, tuple[Tensor, Column | None]]) -> Records:
    names = list(tensors)
    columns = []
    for tensor, column in tensors.values():
        if column is not None:
            _check_fit(tensor, column)
        columns.append(_rows(tensor, column))
    count = len(columns[0])
    if any(len(values) != count for values in columns):
        sizes = ", ".join(f"{n}: {len(v)}" for n, v in zip(names, columns, strict=True))
        raise field_error("inputs", f"tensors have different batch sizes ({sizes})",
                          "send the same number of rows in every tensor")
    if count == 0:
        raise field_error("inputs", "the batch is empty", "send at least one row")
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _from_matrix(tensor: Tensor, columns: Sequence[Column]) -> Records:
    """One [N, k] tensor for k scalar columns, in schema order (MLServer's numpy input)."""
    for column in columns:
        _check_fit(tensor, column)
    names = [c.name for c in columns]
    rows = _nest(tensor.values, tensor.shape)
    if not rows:
        raise field_error("inputs", "the batch is empty", "send at least one row")
    return [dict(zip(names, row, strict=True)) for row in rows]


def tensors_to_records(tensors: Sequence[Tensor], version: Version) -> Records:
    """Records for `version`: one tensor per input (by name, as `content_type: pd` sends a
    data frame), or one [N, k] tensor holding k scalar inputs in schema order."""
    columns = version.schema.inputs
    if not columns:
        return _zip_rows({t.name: (t, None) for t in tensors})
    names = {c.name for c in columns}
    if any(t.name in names for t in tensors) or len(tensors) > 1:
        return _by_column(tensors, columns)
    only = tensors[0]
    if len(columns) == 1:  # a model with one input takes its one tensor by any name
        return _zip_rows({columns[0].name: (only, columns[0])})
    if len(only.shape) == 2 and only.shape[1] == len(columns) \
            and not any(c.shape for c in columns):
        return _from_matrix(only, columns)
    raise field_error(only.where, f"shape {list(only.shape)} fits neither one tensor per input "
                      f"nor one [N, {len(columns)}] matrix",
                      f"send tensors named {', '.join(c.name for c in columns)}")
