"""The ModelFormats adapter: inspect an artifact before registration, load a fetched version."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lastgood.adapters.formats.detect import (
    FORMAT_FLAVORS,
    Format,
    choose_flavor,
    detect,
    detect_in,
)
from lastgood.adapters.formats.mlflow_dir import (
    MLflowModel,
    examples,
    model_file,
    read_mlmodel,
    runtime,
    served_flavors,
    signature,
)
from lastgood.adapters.formats.onnx_format import OnnxPredictor, inspect_onnx
from lastgood.adapters.formats.pickle_format import inspect_pickle, load_pickle, refuse
from lastgood.adapters.formats.records import scalar_input_names
from lastgood.adapters.formats.skops_format import estimator_predictor, inspect_skops, load_skops
from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Version
from lastgood.ports import Inspection, Predictor


class LocalModelFormats:
    """skops, ONNX, MLflow model directories and, with consent, pickle/joblib.

    Stateless, so it pickles (serving hands loaders to probe processes).
    """

    def inspect(self, path: Path, *, flavor: str | None, allow_pickle: bool) -> Inspection:
        """Validate the artifact and read what it says about itself (see ModelFormats)."""
        found, target = detect(Path(path))
        if found is Format.MLFLOW:
            return inspect_mlflow(read_mlmodel(target), flavor, allow_pickle=allow_pickle)
        chosen = choose_flavor(target, found, FORMAT_FLAVORS[found], flavor)
        return inspect_file(target, found, chosen, allow_pickle=allow_pickle)

    def load(self, version: Version, directory: Path) -> Predictor:
        """Load a version whose manifest files were fetched under `directory`."""
        found, target = detect_in(Path(directory), [f.path for f in version.manifest.files])
        if found is Format.MLFLOW:
            return load_mlflow(read_mlmodel(target), version)
        choose_flavor(target, found, FORMAT_FLAVORS[found], version.flavor)
        return load_file(target, found, version)


def inspect_file(path: Path, found: Format, flavor: str, *, allow_pickle: bool) -> Inspection:
    """Inspect one model file of a known format."""
    if found is Format.SKOPS:
        return inspect_skops(path, flavor)
    if found is Format.ONNX:
        return inspect_onnx(path, flavor)
    return inspect_pickle(path, flavor, allow_pickle=allow_pickle)


def load_file(path: Path, found: Format, version: Version) -> Predictor:
    """A predictor for one model file; pickle only for versions registered as unsafe."""
    if found is Format.ONNX:
        return OnnxPredictor(path, columns=scalar_input_names(version))
    if found is Format.SKOPS:
        model, _ = load_skops(path)
    elif not version.unsafe_format:
        raise refuse(path, f"a pickle/joblib file but {version.ref} is not marked unsafe_format")
    else:
        model = load_pickle(path)
    return estimator_predictor(model, scalar_input_names(version))


def inspect_mlflow(model: MLflowModel, flavor: str | None, *, allow_pickle: bool) -> Inspection:
    """Inspect an MLflow directory: its flavor's model file, signature, environment, example."""
    chosen = choose_flavor(model.root, Format.MLFLOW, served_flavors(model), flavor)
    target = model_file(model, chosen)
    if target is None:  # python_function: mlflow would unpickle and import the model's code
        if not allow_pickle:
            raise refuse(model.root, "an MLflow python_function model")
        inner = Inspection(flavor=chosen, unsafe=True,
                           notes=("served through mlflow.pyfunc, which must be installed",))
    else:
        inner = _inspect_inner(target, chosen, allow_pickle=allow_pickle)
    schema, schema_notes = signature(model)
    pinned, runtime_notes = runtime(model)
    golden, golden_notes = examples(model)
    return replace(inner, schema=schema or inner.schema, runtime=pinned, golden=golden,
                   notes=(*inner.notes, *schema_notes, *runtime_notes, *golden_notes))


def _inspect_inner(target: Path, flavor: str, *, allow_pickle: bool) -> Inspection:
    found, path = detect(target)
    if found is Format.MLFLOW or (flavor == "onnx") != (found is Format.ONNX):
        raise InvalidInput(f"the {flavor} flavor's file {target.name} is a {found} artifact",
                           fix="re-log the model with mlflow; MLmodel and its files disagree")
    return inspect_file(path, found, flavor, allow_pickle=allow_pickle)


def load_mlflow(model: MLflowModel, version: Version) -> Predictor:
    """A predictor for the version's flavor of an MLflow directory."""
    chosen = choose_flavor(model.root, Format.MLFLOW, served_flavors(model), version.flavor)
    target = model_file(model, chosen)
    if target is None:
        return _pyfunc(model.root, version)
    found, path = detect(target)
    return load_file(path, found, version)


def _pyfunc(root: Path, version: Version) -> Predictor:
    if not version.unsafe_format:
        raise refuse(root, f"an MLflow python_function model but {version.ref} is not marked "
                           "unsafe_format")
    try:
        pyfunc = importlib.import_module("mlflow.pyfunc")
    except ImportError as exc:
        raise InvalidInput(f"{version.ref} is an MLflow python_function model and mlflow is "
                           "not installed", fix="install mlflow on the serving host") from exc
    return PyfuncPredictor(pyfunc.load_model(str(root)))


@dataclass(frozen=True, slots=True)
class PyfuncPredictor:
    """mlflow.pyfunc models take a list of records and answer one output per record."""

    model: Any

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One plain output per record."""
        from lastgood.adapters.formats.records import per_record

        return per_record(self.model.predict([dict(r) for r in records]), len(records))
