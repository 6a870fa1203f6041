"""One model file of a known format: inspected before registration, loaded for serving."""

from __future__ import annotations

from pathlib import Path

from lastgood.adapters.formats.detect import Format
from lastgood.adapters.formats.onnx_format import OnnxPredictor, inspect_onnx
from lastgood.adapters.formats.pickle_format import inspect_pickle, load_pickle, refuse
from lastgood.adapters.formats.records import scalar_input_names
from lastgood.adapters.formats.skops_format import estimator_predictor, inspect_skops, load_skops
from lastgood.domain.flavors import Inspection
from lastgood.domain.versions import Version
from lastgood.ports import Predictor


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
    return estimator_predictor(model, version.schema.inputs)
