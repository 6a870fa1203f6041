"""ONNX models: checked with onnx, described from the graph, run with onnxruntime on the CPU."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lastgood.adapters.formats.detect import FIX_FORMAT
from lastgood.adapters.formats.records import (
    default_columns,
    matrix,
    per_record,
    rows,
    unreadable,
)
from lastgood.domain.errors import InvalidInput
from lastgood.domain.flavors import Inspection
from lastgood.domain.versions import Column

# onnx.TensorProto element types -> the domain's dtypes (the rest cannot be expressed).
ELEMENT_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int32", 9: "bool", 8: "string"}
# onnxruntime's type names -> the numpy dtype to feed.
FEED_DTYPES: dict[str, Any] = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                               "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                               "tensor(bool)": np.bool_, "tensor(string)": object}


def read_onnx(path: Path) -> Any:
    """The parsed model (weights left on disk), after onnx's checker accepted the file."""
    import onnx

    claimed = path.suffix.lower() == ".onnx"
    try:
        model = onnx.load(str(path), load_external_data=False)
        if not model.ir_version or not model.graph.node:
            raise ValueError("no graph")
        onnx.checker.check_model(str(path))  # by path: external data and >2 GB models work
    except Exception as exc:  # protobuf DecodeError, checker ValidationError, OSError …
        if not claimed:
            raise InvalidInput(f"cannot tell the format of {path.name}",
                               fix=FIX_FORMAT) from exc
        raise unreadable(path, "ONNX", exc) from exc
    return model


def value_column(value: Any) -> Column | None:
    """A graph input or output as a per-record column, None if it is not a plain tensor."""
    if value.type.WhichOneof("value") != "tensor_type":
        return None
    tensor = value.type.tensor_type
    dtype = ELEMENT_DTYPES.get(tensor.elem_type)
    if dtype is None:
        return None
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    return Column(name=value.name, dtype=dtype, shape=tuple(dims[1:]))  # dims[0] is the batch


def graph_schema(model: Any) -> tuple[tuple[tuple[Column, ...], tuple[Column, ...]] | None,
                                      list[str]]:
    """The graph's inputs and outputs as columns, with notes on what could not be expressed."""
    weights = {init.name for init in model.graph.initializer}
    notes: list[str] = []
    inputs: list[Column] = []
    for value in model.graph.input:
        if value.name in weights:
            continue
        column = value_column(value)
        if column is None:
            notes.append(f"input {value.name!r} has a type lastgood cannot describe; "
                         "schema left empty, pass --input-schema")
            return None, notes
        inputs.append(column)
    outputs: list[Column] = []
    for value in model.graph.output:
        column = value_column(value)
        if column is None:
            notes.append(f"output {value.name!r} is not a plain tensor; left out of the schema")
        else:
            outputs.append(column)
    return (tuple(inputs), tuple(outputs)), notes


def inspect_onnx(path: Path, flavor: str) -> Inspection:
    """Validate an ONNX file and describe its graph."""
    model = read_onnx(path)
    schema, notes = graph_schema(model)
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    return Inspection(flavor=flavor, schema=schema, notes=(*notes, f"opsets: {opsets}"))


class OnnxPredictor:
    """Runs an ONNX graph; its first output is the prediction of each record, or with
    `every_output` (as mlflow.pyfunc answers an MLflow directory's graph) every output, named."""

    def __init__(self, path: Path, *, columns: Sequence[str] = (),
                 every_output: bool = False) -> None:
        import onnxruntime as ort

        # No onnx checker here: the bytes were checked at registration and verified by digest
        # since, and the checker would hold a second copy of a large graph in memory.
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings would flood serving logs
        try:
            self._session = ort.InferenceSession(str(path), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's errors are pybind classes of Exception
            raise unreadable(path, "ONNX", exc) from exc
        self._inputs = list(self._session.get_inputs())
        outputs = [o.name for o in self._session.get_outputs()]
        self._outputs = outputs if every_output else outputs[:1]
        self._columns = tuple(columns)
        self._every = every_output

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One plain output per record."""
        if not records:
            return []
        feeds = self._feeds(records)
        try:
            result = self._session.run(self._outputs, feeds)
        except Exception as exc:  # bad shapes or types surface as onnxruntime errors
            raise InvalidInput(f"the ONNX model refused the inputs: {exc}",
                               fix="send the columns and types of the version's schema") from exc
        if not self._every:
            return per_record(result[0], len(records))
        return per_record(dict(zip(self._outputs, result, strict=True)), len(records))

    def _feeds(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Named graph inputs when the records carry them, else one matrix of columns."""
        first = records[0]
        if all(i.name in first for i in self._inputs):
            return {i.name: self._named(records, i) for i in self._inputs}
        if len(self._inputs) == 1 and len(self._inputs[0].shape) == 2:
            only = self._inputs[0]
            columns = self._columns or default_columns(_width(only.shape))
            return {only.name: matrix(rows(records, columns), FEED_DTYPES.get(only.type))}
        names = ", ".join(i.name for i in self._inputs)
        raise InvalidInput(f"records do not carry the model's inputs ({names})",
                           fix=f"send fields named {names}")

    @staticmethod
    def _named(records: Sequence[Mapping[str, Any]], graph_input: Any) -> Any:
        values = matrix([[r[graph_input.name]] for r in records], FEED_DTYPES.get(graph_input.type))
        values = values.reshape((len(records), *values.shape[2:]))
        if len(graph_input.shape) == 2 and values.ndim == 1:  # scalars into [batch, 1]
            values = values.reshape((len(records), 1))
        return values


def _width(shape: Sequence[Any]) -> int:
    width = shape[-1]
    if not isinstance(width, int):
        raise InvalidInput("the ONNX model's input width is not fixed",
                           fix="register the version with --input-schema naming its input columns")
    return width
