"""Open Inference Protocol v2 outputs: every record's prediction as one output tensor, JSON or
binary (fixed-size types little-endian, BYTES as a 4-byte little-endian length before each)."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lastgood.domain.errors import SchemaMismatch
from lastgood.domain.versions import Column
from lastgood.serving.protocols.oip_tensors import DATATYPES, InferRequest

__all__ = ["OutputTensor", "check_requested", "encode_named_outputs", "encode_output",
           "encode_outputs"]


@dataclass(frozen=True, slots=True)
class OutputTensor:
    """An output as OIP sends it: the JSON description and, when binary, its bytes."""

    header: dict[str, Any]
    blob: bytes | None


NUMERIC: Mapping[str, str] = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}
NARROW = {("f", "float32"): "FP32", ("i", "int32"): "INT32"}


def _as_array(predictions: list[Any]) -> np.ndarray[Any, Any] | None:
    try:
        values = np.asarray(predictions)
    except (ValueError, TypeError):  # ragged lists
        return None
    return values if values.dtype.kind in "biufU" else None


# one scalar per record, all of one Python type: (datatype, struct code), no numpy needed
SCALARS: Mapping[tuple[type, str], tuple[str, str]] = {
    (int, ""): ("INT64", "q"), (int, "int32"): ("INT32", "i"), (float, ""): ("FP64", "d"),
    (float, "float32"): ("FP32", "f"), (bool, ""): ("BOOL", "?")}


def _scalars(name: str, predictions: list[Any], hint: Column | None,
             binary: bool) -> OutputTensor | None:
    """The common case, fast: one int, float or bool per record."""
    kinds = {type(p) for p in predictions}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    dtype = hint.dtype if hint is not None else ""
    found = SCALARS.get((kind, dtype)) or SCALARS.get((kind, ""))
    if found is None:
        return None
    datatype, code = found
    header: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [len(predictions)]}
    if not binary:
        header["data"] = predictions
        return OutputTensor(header, None)
    try:
        blob = struct.pack(f"<{len(predictions)}{code}", *predictions)
    except struct.error:  # an int beyond int64: let numpy's path decide
        return None
    header["parameters"] = {"binary_data_size": len(blob)}
    return OutputTensor(header, blob)


def encode_output(name: str, predictions: list[Any], hint: Column | None,
                  binary: bool, *, as_column: bool = False) -> OutputTensor:
    """One output tensor of every record's prediction: numbers and text as themselves,
    anything else (mappings, ragged lists, nulls) as BYTES of its JSON. `as_column`: one value
    per record is shaped [N, 1], as MLServer's MLflow runtime shapes it (the bytes are the same).
    """
    found = _encoded(name, predictions, hint, binary)
    shape = found.header["shape"]
    if as_column and len(shape) == 1:
        found.header["shape"] = [shape[0], 1]
    return found


def _encoded(name: str, predictions: list[Any], hint: Column | None,
             binary: bool) -> OutputTensor:
    fast = _scalars(name, predictions, hint, binary)
    if fast is not None:
        return fast
    values = _as_array(predictions)
    if values is None or values.dtype.kind == "U":
        texts = [p if isinstance(p, str) else json.dumps(p) for p in
                 (predictions if values is None else values.reshape(-1).tolist())]
        shape = [len(predictions)] if values is None else list(values.shape)
        return _bytes_output(name, texts, shape, binary)
    datatype = NARROW.get((values.dtype.kind, hint.dtype if hint else ""),
                          NUMERIC[values.dtype.kind])
    typed = values.astype(DATATYPES[datatype][0])
    header: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(values.shape)}
    if not binary:
        header["data"] = typed.reshape(-1).tolist()
        return OutputTensor(header, None)
    blob = typed.astype(typed.dtype.newbyteorder("<")).tobytes()
    header["parameters"] = {"binary_data_size": len(blob)}
    return OutputTensor(header, blob)


def _bytes_output(name: str, texts: list[str], shape: list[int], binary: bool) -> OutputTensor:
    header: dict[str, Any] = {"name": name, "datatype": "BYTES", "shape": shape}
    if not binary:
        header["data"] = texts
        return OutputTensor(header, None)
    encoded = [t.encode("utf-8") for t in texts]
    blob = b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    header["parameters"] = {"binary_data_size": len(blob)}
    return OutputTensor(header, blob)


def encode_outputs(name: str, predictions: list[Any], hint: Column | None,
                   request: InferRequest, *, as_column: bool = False) -> list[OutputTensor]:
    """The model's one output, as asked for (JSON or binary)."""
    binary = request.binary_output
    for wanted in request.outputs:
        if wanted.binary is not None:
            binary = wanted.binary
    return [encode_output(name, predictions, hint, binary, as_column=as_column)]


def check_requested(request: InferRequest, name: str) -> None:
    """Refuse, before predicting, outputs the model does not produce."""
    for i, wanted in enumerate(request.outputs):
        if wanted.name != name:
            raise SchemaMismatch(f"outputs[{i}]: no output named {wanted.name!r}",
                                 fix=f"this model answers one output, {name!r}",
                                 details={"field": f"outputs[{i}]"})


def encode_named_outputs(predictions: list[Any], hints: tuple[Column, ...],
                         request: InferRequest, *, as_column: bool = False
                         ) -> list[OutputTensor]:
    """A model of several named outputs (one {name: value} per record): one tensor per output,
    named as the model names it, only those the request asks for (all when it names none)."""
    names = list(predictions[0]) if predictions else []
    wanted = {w.name: w.binary for w in request.outputs}
    for i, asked in enumerate(wanted):
        if asked not in names:
            raise SchemaMismatch(f"outputs[{i}]: no output named {asked!r}",
                                 fix=f"this model answers {', '.join(map(repr, names))}",
                                 details={"field": f"outputs[{i}]"})
    columns = {c.name: c for c in hints}
    return [encode_output(name, [p.get(name) for p in predictions], columns.get(name),
                          _binary(wanted.get(name), request.binary_output),
                          as_column=as_column)
            for name in names if not wanted or name in wanted]


def _binary(asked: bool | None, default: bool) -> bool:
    return default if asked is None else asked
