"""Open Inference Protocol v2 tensors: JSON and binary (the binary tensor data extension)
decoded into plain values (`oip_records` reads tensors as records, `oip_outputs` goes the other
way).

A binary request is a JSON header of `Inference-Header-Content-Length` bytes followed by the raw
data of every input whose `parameters.binary_data_size` is set, in input order: fixed-size types
little-endian, BOOL one byte each, BYTES as a 4-byte little-endian length before each element.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from lastgood.domain.versions import Column
from lastgood.serving.inputs import FLOAT_LIMITS, MalformedBody, field_error, float_misfit
from lastgood.serving.protocols.common import json_body

__all__ = ["DATATYPES", "InferRequest", "RequestedOutput", "Tensor", "datatype_of",
           "decode_request"]

# datatype -> (numpy dtype for its data, kind of JSON value it holds)
DATATYPES: Mapping[str, tuple[Any, str]] = {
    "BOOL": (np.bool_, "bool"), "INT8": (np.int8, "int"), "INT16": (np.int16, "int"),
    "INT32": (np.int32, "int"), "INT64": (np.int64, "int"), "UINT8": (np.uint8, "int"),
    "UINT16": (np.uint16, "int"), "UINT32": (np.uint32, "int"), "UINT64": (np.uint64, "int"),
    "FP16": (np.float16, "float"), "FP32": (np.float32, "float"), "FP64": (np.float64, "float"),
    "BYTES": (object, "bytes"),
}
COLUMN_DATATYPES = {"float64": "FP64", "float32": "FP32", "int64": "INT64", "int32": "INT32",
                    "bool": "BOOL", "string": "BYTES", "category": "BYTES", "datetime": "BYTES"}
JSON_TYPES: Mapping[str, frozenset[type]] = {
    "bool": frozenset({bool}), "int": frozenset({int}), "float": frozenset({int, float}),
    "bytes": frozenset({str})}
SHAPE_FIX = 'send {"inputs": [{"name", "shape", "datatype", "data"}]}'
MAX_DIMS = 8


def datatype_of(column: Column) -> str:
    """The OIP datatype of a schema column."""
    return COLUMN_DATATYPES.get(column.dtype, "BYTES")


class Tensor(NamedTuple):
    """One decoded input tensor: its values as plain Python, flat, in row-major order.

    JSON values are taken as written (a FP32 value keeps its decimal digits); binary data is
    read as its datatype. Plain lists, not numpy: for the small batches a server sees, numpy's
    per-call cost would be most of the decoding time.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: list[Any]
    position: int  # its place among the inputs

    @property
    def where(self) -> str:
        """How errors name it: `inputs[0] (sepal_length)`."""
        return f"inputs[{self.position}] ({self.name})"


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
    params: Mapping[str, Any] = field(default_factory=dict)  # the model's inference params


def _header_length(value: str | None, size: int) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not 0 < int(text) <= size:
        raise MalformedBody(f"Inference-Header-Content-Length {text[:20]!r} does not fit a "
                            f"{size} byte body",
                            fix="send the byte length of the JSON header that starts the body")
    return int(text)


# request parameters the protocol itself defines (or MLServer reads); the rest are the model's
OIP_PARAMETERS = frozenset({"binary_data_output", "content_type", "headers"})


def decode_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse an inference request (JSON, or JSON header plus binary tensor data)."""
    length = _header_length(header_length, len(body))
    head = body if length is None else body[:length]
    payload = json_body(head, SHAPE_FIX)
    if not isinstance(payload, dict):
        raise field_error("body", "expected a JSON object", SHAPE_FIX)
    rid = payload.get("id")
    if "id" in payload and not isinstance(rid, str):  # the protocol's id is a string, not null
        raise field_error("id", "expected a string", "send a string id, or none")
    blobs = _Blobs(body[length:] if length is not None else None)
    raw = payload.get("inputs")
    if not isinstance(raw, list) or not raw:
        raise field_error("inputs", "expected a non-empty list of tensors", SHAPE_FIX)
    inputs = tuple(_tensor(item, i, blobs) for i, item in enumerate(raw))
    blobs.finish()
    parameters = _parameters(payload, "")
    return InferRequest(id=rid, inputs=inputs, outputs=_outputs(payload.get("outputs", [])),
                        binary_output=parameters.get("binary_data_output") is True,
                        params={k: v for k, v in parameters.items() if k not in OIP_PARAMETERS})


def _parameters(item: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """`item`'s parameters object; `where` names the item (`inputs[0] (x)`, `outputs[1]`)."""
    found = item.get("parameters", {})  # an object when sent: null is not one
    if not isinstance(found, dict):
        raise field_error(f"{where}.parameters".lstrip("."), "expected an object",
                          "send parameters as a JSON object")
    return found


def _outputs(raw: Any) -> tuple[RequestedOutput, ...]:
    if not isinstance(raw, list):
        raise field_error("outputs", "expected a list", 'send "outputs": [{"name": ...}]')
    found = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise field_error(f"outputs[{i}]", "expected an object with a name",
                              'send {"name": "..."}')
        parameters = _parameters(item, f"outputs[{i}]")
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
    if type(raw) is not list or not 1 <= len(raw) <= MAX_DIMS or set(map(type, raw)) != {int} \
            or min(raw) < 0:
        raise field_error(f"{where}.shape", "expected a list of 1 to 8 non-negative sizes",
                          "send the tensor's shape, e.g. [2, 4]")
    return tuple(raw)


def _tensor(item: Any, index: int, blobs: _Blobs) -> Tensor:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise field_error(f"inputs[{index}]", "expected a tensor object with a name", SHAPE_FIX)
    where = f"inputs[{index}] ({item['name']})"  # cheap next to parsing: errors use it
    datatype = item.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise field_error(f"{where}.datatype", f"unknown datatype {str(datatype)[:20]!r}",
                          f"use one of {', '.join(DATATYPES)}")
    shape = _shape(item.get("shape"), where)
    count = math.prod(shape)
    size = _parameters(item, where).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise field_error(f"{where}.parameters.binary_data_size",
                              "expected a byte count", "send the tensor's size in bytes")
        values = _from_binary(blobs.take(size, where), datatype, count, where)
    else:
        values = _from_json(item.get("data"), datatype, count, where)
    return Tensor(item["name"], datatype, shape, values, index)


def _flat(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise field_error(f"{where}.data", "expected a list of values",
                          "send data as a (flat or nested) list")
    if list not in set(map(type, data)):
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
    if not set(map(type, flat)) <= allowed:
        bad = next(i for i, v in enumerate(flat) if type(v) not in allowed)
        got = type(flat[bad]).__name__
        raise field_error(f"{where}.data[{bad}]", f"datatype {datatype} but the value is a "
                          f"{got} ({flat[bad]!r:.30})", f"send {kind} values, or declare "
                          "the datatype the data has")
    if kind == "int":
        low, high = INT_BOUNDS[datatype]
        if flat and (min(flat) < low or max(flat) > high):
            bad = next(i for i, v in enumerate(flat) if not low <= v <= high)
            raise field_error(f"{where}.data[{bad}]", f"{str(flat[bad])[:24]} does not fit "
                              f"{datatype}", f"send values from {low} to {high}")
    if kind == "float":
        return _finite(flat, datatype, where, convert=True)
    return flat


FLOAT_TYPES = {"FP16": "float16", "FP32": "float32", "FP64": "float64"}


def _finite(values: list[Any], datatype: str, where: str, *, convert: bool = False
            ) -> list[Any]:
    """Float values, refused naming the first NaN, infinity or number that overflows
    `datatype` (a JSON FP32 value of 1e39, a 400-digit integer declared FP64)."""
    limit = FLOAT_LIMITS[FLOAT_TYPES[datatype]]
    if values and not (-limit < min(values) and max(values) < limit
                       and all(map(math.isfinite, values))):
        bad = next(i for i, v in enumerate(values) if float_misfit(v, FLOAT_TYPES[datatype]))
        raise field_error(f"{where}.data[{bad}]",
                          float_misfit(values[bad], FLOAT_TYPES[datatype], called=datatype),
                          f"send finite numbers that fit {datatype}")
    return list(map(float, values)) if convert else values


STRUCT_CODES = {"BOOL": "B", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
                "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "FP16": "e",
                "FP32": "f", "FP64": "d"}


def _from_binary(blob: bytes, datatype: str, count: int, where: str) -> list[Any]:
    kind = DATATYPES[datatype][1]
    if kind == "bytes":
        return _bytes_elements(blob, count, where)
    code = STRUCT_CODES[datatype]
    itemsize = struct.calcsize(code)
    if len(blob) != count * itemsize:
        raise field_error(f"{where}.parameters.binary_data_size", f"{len(blob)} bytes, but "
                          f"the shape holds {count} {datatype} values of {itemsize} bytes",
                          "make the shape, datatype and binary_data_size agree")
    values = list(struct.unpack(f"<{count}{code}", blob))  # little-endian, as the spec says
    if kind == "bool":
        if any(v > 1 for v in values):
            raise field_error(f"{where}.data", "a BOOL byte is neither 0 nor 1",
                              "send one byte per value, 0 or 1")
        return [v == 1 for v in values]
    return _finite(values, datatype, where) if kind == "float" else values


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
