"""Open Inference Protocol v2 tensors: JSON and binary (the binary tensor data extension)
decoded into numpy arrays, and tensors into records (`oip_outputs` goes the other way).

A binary request is a JSON header of `Inference-Header-Content-Length` bytes followed by the raw
data of every input whose `parameters.binary_data_size` is set, in input order: fixed-size types
little-endian, BOOL one byte each, BYTES as a 4-byte little-endian length before each element.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lastgood.domain.versions import Column, Version
from lastgood.serving.inputs import MalformedBody, field_error
from lastgood.serving.protocols.common import Records, json_body

__all__ = ["DATATYPES", "InferRequest", "RequestedOutput", "Tensor", "datatype_of",
           "decode_request", "tensors_to_records"]

# datatype -> (numpy dtype for its data, kind of JSON value it holds)
DATATYPES: Mapping[str, tuple[Any, str]] = {
    "BOOL": (np.bool_, "bool"), "INT8": (np.int8, "int"), "INT16": (np.int16, "int"),
    "INT32": (np.int32, "int"), "INT64": (np.int64, "int"), "UINT8": (np.uint8, "int"),
    "UINT16": (np.uint16, "int"), "UINT32": (np.uint32, "int"), "UINT64": (np.uint64, "int"),
    "FP16": (np.float16, "float"), "FP32": (np.float32, "float"), "FP64": (np.float64, "float"),
    "BYTES": (object, "bytes"),
}
# a schema column's dtype -> the tensor kinds that may feed it
FITS: Mapping[str, frozenset[str]] = {
    "float64": frozenset({"float", "int"}), "float32": frozenset({"float", "int"}),
    "int64": frozenset({"int"}), "int32": frozenset({"int"}), "bool": frozenset({"bool"}),
    "string": frozenset({"bytes"}), "category": frozenset({"bytes"}),
    "datetime": frozenset({"bytes"}),
}
COLUMN_DATATYPES = {"float64": "FP64", "float32": "FP32", "int64": "INT64", "int32": "INT32",
                    "bool": "BOOL", "string": "BYTES", "category": "BYTES", "datetime": "BYTES"}
JSON_TYPES: Mapping[str, tuple[type, ...]] = {"bool": (bool,), "int": (int,),
                                               "float": (int, float), "bytes": (str,)}
SHAPE_FIX = 'send {"inputs": [{"name", "shape", "datatype", "data"}]}'
MAX_DIMS = 8


def datatype_of(column: Column) -> str:
    """The OIP datatype of a schema column."""
    return COLUMN_DATATYPES.get(column.dtype, "BYTES")


@dataclass(frozen=True, slots=True)
class Tensor:
    """One decoded input tensor: its values as plain Python, flat, in row-major order.

    JSON values are taken as written (a FP32 value keeps its decimal digits); binary data is
    read as its datatype. Plain lists, not numpy: for the small batches a server sees, numpy's
    per-call cost would be most of the decoding time.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: list[Any]
    where: str  # how errors name it: inputs[0] (sepal_length)


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    name: str
    binary: bool | None  # None: as the request's binary_data_output says


@dataclass(frozen=True, slots=True)
class InferRequest:
    """An inference request: its id, input tensors and the outputs asked for."""

    id: str | None
    inputs: tuple[Tensor, ...]
    outputs: tuple[RequestedOutput, ...]
    binary_output: bool


def _header_length(value: str | None, size: int) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not 0 < int(text) <= size:
        raise MalformedBody(f"Inference-Header-Content-Length {text[:20]!r} does not fit a "
                            f"{size} byte body",
                            fix="send the byte length of the JSON header that starts the body")
    return int(text)


def decode_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse an inference request (JSON, or JSON header plus binary tensor data)."""
    length = _header_length(header_length, len(body))
    head = body if length is None else body[:length]
    payload = json_body(head, SHAPE_FIX)
    if not isinstance(payload, dict):
        raise field_error("body", "expected a JSON object", SHAPE_FIX)
    rid = payload.get("id")
    if rid is not None and not isinstance(rid, str):
        raise field_error("id", "expected a string", "send a string id, or none")
    blobs = _Blobs(body[length:] if length is not None else None)
    raw = payload.get("inputs")
    if not isinstance(raw, list) or not raw:
        raise field_error("inputs", "expected a non-empty list of tensors", SHAPE_FIX)
    inputs = tuple(_tensor(item, i, blobs) for i, item in enumerate(raw))
    blobs.finish()
    parameters = _parameters(payload, "parameters")
    return InferRequest(id=rid or None, inputs=inputs, outputs=_outputs(payload.get("outputs")),
                        binary_output=parameters.get("binary_data_output") is True)


def _parameters(item: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    found = item.get("parameters") or {}
    if not isinstance(found, dict):
        raise field_error(where, "expected an object", "send parameters as a JSON object")
    return found


def _outputs(raw: Any) -> tuple[RequestedOutput, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise field_error("outputs", "expected a list", 'send "outputs": [{"name": ...}]')
    found = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise field_error(f"outputs[{i}]", "expected an object with a name",
                              'send {"name": "..."}')
        parameters = _parameters(item, f"outputs[{i}].parameters")
        if "classification" in parameters:
            raise field_error(f"outputs[{i}].parameters.classification",
                              "the classification extension is not supported",
                              "ask for the output itself")
        binary = parameters.get("binary_data")
        found.append(RequestedOutput(item["name"], binary if isinstance(binary, bool) else None))
    return tuple(found)


class _Blobs:
    """The binary part of a request, handed out in input order."""

    def __init__(self, data: bytes | None) -> None:
        self.data, self.offset = data, 0

    def take(self, size: int, where: str) -> bytes:
        if self.data is None:
            raise MalformedBody(f"{where}: binary_data_size is set but the request has no "
                                "Inference-Header-Content-Length header",
                                fix="send the header, or the tensor's data as JSON")
        left = len(self.data) - self.offset
        if size > left:
            raise MalformedBody(f"{where}: binary_data_size is {size} bytes but only {left} "
                                "remain in the body", fix="send every tensor's bytes in full")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def finish(self) -> None:
        if self.data is not None and self.offset != len(self.data):
            raise MalformedBody(f"{len(self.data) - self.offset} bytes after the last binary "
                                "tensor belong to no input",
                                fix="set each input's binary_data_size to its byte length")


def _shape(raw: Any, where: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_DIMS or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw):
        raise field_error(f"{where}.shape", "expected a list of 1 to 8 non-negative sizes",
                          "send the tensor's shape, e.g. [2, 4]")
    return tuple(raw)


def _tensor(item: Any, index: int, blobs: _Blobs) -> Tensor:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise field_error(f"inputs[{index}]", "expected a tensor object with a name", SHAPE_FIX)
    where = f"inputs[{index}] ({item['name']})"
    datatype = item.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise field_error(f"{where}.datatype", f"unknown datatype {str(datatype)[:20]!r}",
                          f"use one of {', '.join(DATATYPES)}")
    shape = _shape(item.get("shape"), where)
    count = math.prod(shape)
    size = _parameters(item, f"{where}.parameters").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise field_error(f"{where}.parameters.binary_data_size",
                              "expected a byte count", "send the tensor's size in bytes")
        values = _from_binary(blobs.take(size, where), datatype, count, where)
    else:
        values = _from_json(item.get("data"), datatype, count, where)
    return Tensor(item["name"], datatype, shape, values, where)


def _flat(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise field_error(f"{where}.data", "expected a list of values",
                          "send data as a (flat or nested) list")
    if not any(type(v) is list for v in data):
        return data
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            if len(stack) > MAX_DIMS:
                raise field_error(f"{where}.data", "nested too deeply", "send flat data")
            stack.append(iter(item))
        else:
            out.append(item)
    return out


_END = object()


INT_BOUNDS = {name: (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
              for name, (dtype, kind) in DATATYPES.items() if kind == "int"}


def _from_json(data: Any, datatype: str, count: int, where: str) -> list[Any]:
    flat = _flat(data, where)
    if len(flat) != count:
        raise field_error(f"{where}.data", f"the shape holds {count} values, data has "
                          f"{len(flat)}", "make the shape and the data agree")
    kind = DATATYPES[datatype][1]
    allowed = JSON_TYPES[kind]
    bad = next((i for i, v in enumerate(flat) if type(v) not in allowed), None)
    if bad is not None:
        got = type(flat[bad]).__name__
        raise field_error(f"{where}.data[{bad}]", f"datatype {datatype} but the value is a "
                          f"{got} ({flat[bad]!r:.30})", f"send {kind} values, or declare "
                          "the datatype the data has")
    if kind == "int":
        low, high = INT_BOUNDS[datatype]
        if not all(low <= v <= high for v in flat):
            raise field_error(f"{where}.data", f"a value does not fit {datatype}",
                              f"send values from {low} to {high}")
    if kind == "float":
        flat = [float(v) for v in flat]
    return _finite(flat, kind, where)


def _finite(values: list[Any], kind: str, where: str) -> list[Any]:
    if kind == "float" and not all(map(math.isfinite, values)):
        raise field_error(f"{where}.data", "holds NaN or infinity", "send finite numbers")
    return values


def _from_binary(blob: bytes, datatype: str, count: int, where: str) -> list[Any]:
    dtype, kind = DATATYPES[datatype]
    if kind == "bytes":
        return _bytes_elements(blob, count, where)
    itemsize = np.dtype(dtype).itemsize
    if len(blob) != count * itemsize:
        raise field_error(f"{where}.parameters.binary_data_size", f"{len(blob)} bytes, but "
                          f"the shape holds {count} {datatype} values of {itemsize} bytes",
                          "make the shape, datatype and binary_data_size agree")
    if kind == "bool":
        raw = np.frombuffer(blob, dtype=np.uint8)
        if bool((raw > 1).any()):
            raise field_error(f"{where}.data", "a BOOL byte is neither 0 nor 1",
                              "send one byte per value, 0 or 1")
        flags: list[Any] = raw.astype(np.bool_).tolist()
        return flags
    values = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<")).tolist()
    return _finite(values, kind, where)


def _bytes_elements(blob: bytes, count: int, where: str) -> list[Any]:
    items: list[str] = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise MalformedBody(f"{where}: a BYTES element's length prefix is cut",
                                fix="prefix every element with its 4-byte length")
        (size,) = struct.unpack_from("<I", blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise MalformedBody(f"{where}: a BYTES element is cut",
                                fix="send every element in full")
        try:
            items.append(blob[offset:offset + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise field_error(f"{where}.data", "a BYTES element is not UTF-8 text",
                              "send text columns as UTF-8") from None
        offset += size
    if len(items) != count:
        raise field_error(f"{where}.data", f"the shape holds {count} values, the binary data "
                          f"has {len(items)}", "make the shape and the data agree")
    return list(items)


# -- tensors to records ---------------------------------------------------------------------

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
    rows: dict[str, list[Any]] = {}
    for name, (tensor, column) in tensors.items():
        if column is not None:
            _check_fit(tensor, column)
        rows[name] = _rows(tensor, column)
    counts = {len(v) for v in rows.values()}
    if len(counts) > 1:
        sizes = ", ".join(f"{n}: {len(v)}" for n, v in rows.items())
        raise field_error("inputs", f"tensors have different batch sizes ({sizes})",
                          "send the same number of rows in every tensor")
    count = counts.pop()
    if count == 0:
        raise field_error("inputs", "the batch is empty", "send at least one row")
    return [{name: values[i] for name, values in rows.items()} for i in range(count)]


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
