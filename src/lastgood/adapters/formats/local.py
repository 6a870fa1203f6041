"""The ModelFormats adapter: inspect an artifact before registration, load a fetched version."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lastgood.adapters.formats.detect import (
    FORMAT_FLAVORS,
    Format,
    choose_flavor,
    detect,
    detect_in,
)
from lastgood.adapters.formats.mlflow_dir import read_mlmodel
from lastgood.adapters.formats.mlflow_load import inspect_mlflow, load_mlflow
from lastgood.adapters.formats.mlflow_reference import reference_answer
from lastgood.adapters.formats.single import inspect_file, load_file
from lastgood.domain.flavors import Inspection
from lastgood.domain.versions import Version
from lastgood.ports import Predictor


class LocalModelFormats:
    """skops, ONNX, MLflow model directories (sklearn, xgboost, lightgbm, onnx, pyfunc) and,
    with consent, pickle/joblib.

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

    def against_reference(self, version: Version, directory: Path, native: Mapping[str, Any],
                          predictor: Predictor | None) -> dict[str, Any]:
        """The recording child's answer held to the reference: for an MLflow directory,
        mlflow.pyfunc's outputs and which path serves (see formats.mlflow_reference)."""
        found, target = detect_in(Path(directory), [f.path for f in version.manifest.files])
        if found is not Format.MLFLOW:
            return dict(native)
        return reference_answer(read_mlmodel(target), version, native, predictor)
