"""MLflow model directories: each served flavor inspected before registration and loaded for
serving, the signature reconciled with what the model itself says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lastgood.adapters.formats.boosters import inspect_booster, load_lightgbm, load_xgboost
from lastgood.adapters.formats.detect import Format, choose_flavor, detect
from lastgood.adapters.formats.mlflow_dir import (
    MLflowModel,
    Schema2,
    examples,
    model_file,
    named,
    params_schema,
    predict_fn,
    pyfunc_pins,
    pyfunc_unpickles,
    runtime,
    serialization,
    served_flavors,
    signature,
)
from lastgood.adapters.formats.onnx_format import OnnxPredictor
from lastgood.adapters.formats.pickle_format import refuse
from lastgood.adapters.formats.records import frame, import_for, per_record, scalar_input_names
from lastgood.adapters.formats.single import inspect_file, load_file
from lastgood.domain.errors import InvalidInput
from lastgood.domain.flavors import Inspection
from lastgood.domain.versions import Column, Version
from lastgood.ports import Predictor

PICKLED = ("cloudpickle", "pickle")
PYFUNC_NOTE = "served through mlflow.pyfunc: serving hosts need pip install 'lastgood[mlflow]'"


def inspect_mlflow(model: MLflowModel, flavor: str | None, *, allow_pickle: bool) -> Inspection:
    """Inspect an MLflow directory: its flavor's model file, signature, environment, example."""
    chosen = choose_flavor(model.root, Format.MLFLOW, served_flavors(model), flavor)
    chosen, path_notes = native_or_pyfunc(model, chosen)
    inner = inspect_flavor(model, chosen, allow_pickle=allow_pickle)
    declared, schema_notes = signature(model)
    schema = reconcile(model, chosen, declared, inner.schema)
    pinned, runtime_notes = runtime(model, chosen)
    golden, golden_notes = examples(model, schema[0] if schema else ())
    own_notes = tuple(n for n in inner.notes
                      if declared is None or not n.startswith("input columns unknown"))
    back = pyfunc_pins(model, pinned) if chosen != "python_function" else {}
    native = tuple(n for n in runtime_notes if n.startswith("left out "))
    return replace(inner, schema=schema, runtime=pinned, golden=golden,
                   params=params_schema(model), pyfunc_packages=back, native_notes=native,
                   notes=(*path_notes, *own_notes, *schema_notes,
                          *(n for n in runtime_notes if n not in native), *golden_notes))


def native_or_pyfunc(model: MLflowModel, chosen: str) -> tuple[str, list[str]]:
    """The flavor that serves: pyfunc where the MLmodel asks for what the native path does
    not do (a `pyfunc_predict_fn` other than predict)."""
    wanted = predict_fn(model)
    if chosen == "python_function" or wanted == "predict" or "python_function" not in \
            model.flavors:
        return chosen, []
    return "python_function", [f"serving through mlflow.pyfunc: predict_fn {wanted}"]


def inspect_flavor(model: MLflowModel, chosen: str, *, allow_pickle: bool) -> Inspection:
    """The flavor's own file, checked without running any code from it."""
    target = model_file(model, chosen)
    if target is None:  # python_function: mlflow imports the loader module (and unpickles)
        unsafe = pyfunc_unpickles(model)
        if unsafe and not allow_pickle:
            raise refuse(model.root, "an MLflow python_function model (mlflow runs its loader "
                                     "and unpickles its files)")
        return Inspection(flavor=chosen, unsafe=unsafe, notes=(PYFUNC_NOTE,))
    if chosen in ("xgboost", "lightgbm"):
        return inspect_booster(target, chosen, allow_pickle=allow_pickle)
    how = serialization(model, chosen)
    if how in PICKLED and not allow_pickle:
        raise refuse(target, f"an MLflow {chosen} model saved with {how}")
    found, path = detect(target)
    if found is Format.MLFLOW or (chosen == "onnx") != (found is Format.ONNX):
        raise InvalidInput(f"the {chosen} flavor's file {target.name} is a {found} artifact",
                           fix="re-log the model with mlflow; MLmodel and its files disagree")
    return inspect_file(path, found, chosen, allow_pickle=allow_pickle)


def reconcile(model: MLflowModel, chosen: str, declared: Schema2 | None,
              own: Schema2 | None) -> Schema2 | None:
    """The signature, its unnamed tensors named after the model's inputs; refused if it
    contradicts the ONNX graph."""
    if declared is None:
        return own
    inputs, outputs = declared
    own_inputs, own_outputs = own or ((), ())
    if chosen == "onnx" and own is not None:
        check_against_graph(model, inputs, own_inputs)
    return named(inputs, [c.name for c in own_inputs]), outputs or own_outputs


def check_against_graph(model: MLflowModel, signed: Sequence[Column],
                        graph: Sequence[Column]) -> None:
    """Refuse a tensor signature whose inputs the ONNX graph does not take."""
    tensors = [c for c in signed if not c.name or c.shape]
    if not tensors:
        return  # a column signature: the columns are fed to the graph as one matrix
    if len(signed) != len(graph):
        raise disagreement(model, f"{len(signed)} input(s) in the signature, {len(graph)} in "
                                  "the graph")
    for mine, theirs in zip(signed, graph, strict=True):
        same_shape = len(mine.shape) == len(theirs.shape) and all(
            a == b or a < 0 or b < 0 for a, b in zip(mine.shape, theirs.shape, strict=True))
        if mine.dtype != theirs.dtype or not same_shape:
            raise disagreement(model, f"input {theirs.name!r} is {mine.dtype} {list(mine.shape)} "
                                      f"in the signature but {theirs.dtype} "
                                      f"{list(theirs.shape)} in the graph")


def disagreement(model: MLflowModel, what: str) -> InvalidInput:
    return InvalidInput(f"the signature of the MLflow model {model.root.name} disagrees with its "
                        f"ONNX graph: {what}",
                        fix="re-log the model with a signature inferred from the array the graph "
                            "takes (mlflow.models.infer_signature)")


def load_mlflow(model: MLflowModel, version: Version) -> Predictor:
    """A predictor for the version's flavor of an MLflow directory."""
    chosen = choose_flavor(model.root, Format.MLFLOW, served_flavors(model), version.flavor)
    target = model_file(model, chosen)
    if target is None:
        return pyfunc_predictor(model, version)
    if chosen == "xgboost":
        return load_xgboost(target, model.conf(chosen), version.schema.inputs)
    if chosen == "lightgbm":
        return load_lightgbm(target, version.schema.inputs, unsafe=version.unsafe_format)
    found, path = detect(target)
    if found is Format.ONNX:  # every output, named, as mlflow.pyfunc answers the graph
        return OnnxPredictor(path, columns=scalar_input_names(version), every_output=True)
    return load_file(path, found, version)


def pyfunc_predictor(model: MLflowModel, version: Version) -> Predictor:
    """Any other MLflow model, through mlflow itself (only with consent when it unpickles)."""
    if not version.unsafe_format and pyfunc_unpickles(model):
        raise refuse(model.root, f"an MLflow python_function model but {version.ref} is not "
                                 "marked unsafe_format")
    loaded = load_reference(model.root, what=version.ref)
    # lastgood enforces the signature itself (every record is checked against it and the frame
    # is built with its dtypes), so the flavor's own predict function (predict_proba, …) is
    # called without mlflow's second enforcement, which costs several times the prediction of a
    # small model.
    inner = getattr(loaded, "_predict_fn", None) if version.schema.inputs else None
    defaults = {p.name: p.default for p in version.schema.params}
    return PyfuncPredictor(inner if callable(inner) else loaded.predict,
                           tuple(version.schema.inputs), defaults)


def load_reference(root: Path, *, what: str) -> Any:
    """`mlflow.pyfunc.load_model(root)`: the reference for an MLflow directory's outputs."""
    pyfunc = import_for("python_function", "mlflow.pyfunc",
                        what=f"{what}, an MLflow python_function model,")
    return pyfunc.load_model(str(root))


@dataclass(frozen=True, slots=True)
class PyfuncPredictor:
    """An mlflow.pyfunc model, fed a DataFrame with the signature's dtypes (or one tensor)."""

    call: Any  # the model's predict function: batch input -> batch output
    columns: tuple[Column, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)  # its params schema's defaults

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One plain output per record (the params schema's defaults, if it has one)."""
        if self.defaults:
            return self.predict_with_params(records, self.defaults)
        if not records:
            return []
        return per_record(self.call(self._inputs(records)), len(records))

    def predict_with_params(self, records: Sequence[Mapping[str, Any]],
                            params: Mapping[str, Any]) -> list[Any]:
        """One plain output per record, the model given its inference params."""
        if not records:
            return []
        return per_record(self.call(self._inputs(records), params=dict(params)), len(records))

    def _inputs(self, records: Sequence[Mapping[str, Any]]) -> Any:
        if len(self.columns) == 1 and self.columns[0].shape:
            import numpy as np

            name = self.columns[0].name
            return np.asarray([r[name] for r in records])
        if self.columns:
            return frame(records, self.columns)
        import pandas as pd

        return pd.DataFrame([dict(r) for r in records])
