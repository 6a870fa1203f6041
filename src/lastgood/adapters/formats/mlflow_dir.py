"""MLflow model directories, read from their files (MLmodel, requirements, input example) alone.

mlflow itself is never imported: a registry host should not need it, and lastgood loads the
sklearn (skops or pickle) and onnx flavors with their own libraries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from lastgood.adapters.formats.detect import MLMODEL
from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Column, GoldenExample, Runtime

Schema2 = tuple[tuple[Column, ...], tuple[Column, ...]]
SERVED = ("sklearn", "onnx", "python_function")  # preference order when no flavor is given
COLSPEC_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32",
                  "boolean": "bool", "string": "string", "datetime": "datetime"}
TENSOR_DTYPES = {"float64": "float64", "float32": "float32", "int64": "int64", "int32": "int32",
                 "bool": "bool", "str": "string", "object": "string"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;,#]+)")
NOT_NEEDED = frozenset({"mlflow", "mlflow-skinny"})  # lastgood loads the flavors without them
MAX_EXAMPLES = 20


@dataclass(frozen=True, slots=True)
class MLflowModel:
    """A parsed MLmodel file and the directory it describes."""

    root: Path
    meta: Mapping[str, Any]

    @property
    def flavors(self) -> Mapping[str, Any]:
        flavors = self.meta.get("flavors")
        return flavors if isinstance(flavors, Mapping) else {}

    def conf(self, flavor: str) -> Mapping[str, Any]:
        conf = self.flavors.get(flavor)
        return conf if isinstance(conf, Mapping) else {}

    def file(self, name: object, default: str) -> Path:
        """A file named by the MLmodel, refused if it would escape the model directory."""
        relative = PurePosixPath(str(name or default))
        if relative.is_absolute() or ".." in relative.parts:
            raise InvalidInput(f"{MLMODEL} names {relative} outside {self.root.name}",
                               fix="keep every model file inside the MLflow model directory")
        return self.root.joinpath(*relative.parts)


def read_mlmodel(root: Path) -> MLflowModel:
    """Parse root/MLmodel; it must be YAML with a `flavors` mapping."""
    try:
        meta = yaml.safe_load((root / MLMODEL).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{root / MLMODEL} is not readable YAML ({type(exc).__name__})",
                           fix="re-save the model with mlflow; the MLmodel file is damaged"
                           ) from exc
    if not isinstance(meta, Mapping) or not isinstance(meta.get("flavors"), Mapping):
        raise InvalidInput(f"{root / MLMODEL} has no flavors",
                           fix="re-save the model with mlflow; the MLmodel file is incomplete")
    return MLflowModel(root=root, meta=meta)


def served_flavors(model: MLflowModel) -> tuple[str, ...]:
    """The flavors lastgood can serve from this directory, preferred first."""
    found = tuple(f for f in SERVED if f in model.flavors)
    if not found:
        raise InvalidInput(
            f"the MLflow model {model.root.name} has flavors {', '.join(model.flavors)}; "
            "lastgood serves sklearn, onnx and python_function",
            fix="log the model with mlflow.sklearn (serialization_format='skops') or mlflow.onnx")
    return found


def model_file(model: MLflowModel, flavor: str) -> Path | None:
    """The file holding the model of `flavor`; None for python_function (mlflow loads it)."""
    if flavor == "sklearn":
        return model.file(model.conf(flavor).get("pickled_model"), "model.pkl")
    if flavor == "onnx":
        return model.file(model.conf(flavor).get("data"), "model.onnx")
    return None


def signature(model: MLflowModel) -> tuple[Schema2 | None, list[str]]:
    """Input and output columns from the MLmodel signature, if it has one lastgood can express."""
    sig = model.meta.get("signature")
    if not isinstance(sig, Mapping) or not sig.get("inputs"):
        return None, ["the MLmodel has no signature: pass --schema to check the data contract"]
    try:
        inputs = spec_columns(sig.get("inputs"), single="input")
        outputs = spec_columns(sig.get("outputs"), single="prediction")
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"the signature in {model.root.name}/{MLMODEL} is malformed: {exc}",
                           fix="re-log the model with mlflow's infer_signature") from exc
    if inputs is None:
        return None, ["the signature has input types lastgood cannot express; pass --schema"]
    return (inputs, outputs or ()), []


def spec_columns(text: Any, *, single: str) -> tuple[Column, ...] | None:
    """mlflow column or tensor specs (JSON text in MLmodel) as columns; None if unexpressible."""
    if not text:
        return ()
    specs = json.loads(text) if isinstance(text, str) else text
    columns: list[Column] = []
    for index, spec in enumerate(specs):
        name = str(spec.get("name") or (single if len(specs) == 1 else f"{single}_{index}"))
        if spec.get("type") == "tensor":
            tensor = spec.get("tensor-spec") or {}
            dtype = TENSOR_DTYPES.get(str(tensor.get("dtype")))
            shape = tuple(int(d) for d in (tensor.get("shape") or [])[1:])
        else:
            dtype, shape = COLSPEC_DTYPES.get(str(spec.get("type"))), ()
        if dtype is None:
            return None
        columns.append(Column(name=name, dtype=dtype, shape=shape))
    return tuple(columns)


def runtime(model: MLflowModel) -> tuple[Runtime | None, list[str]]:
    """Python version and package pins from python_env.yaml, conda.yaml and requirements.txt."""
    env = model.conf("python_function").get("env")
    env = env if isinstance(env, Mapping) else {"conda": env}
    python_env = _yaml(model.file(env.get("virtualenv"), "python_env.yaml"))
    conda = _yaml(model.file(env.get("conda"), "conda.yaml"))
    python = str(python_env.get("python") or _conda_python(conda)
                 or model.conf("python_function").get("python_version") or "")
    lines = _lines(model.root / "requirements.txt") or _python_env_lines(python_env) \
        or _conda_pip_lines(conda)
    packages, notes = pins(lines)
    sklearn = model.conf("sklearn").get("sklearn_version")
    if sklearn and "scikit-learn" not in packages:  # the flavor records what it was saved with
        packages["scikit-learn"] = str(sklearn)
    if not python and not packages:
        return None, notes
    return Runtime(python=python, packages=packages), notes


def pins(lines: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """`name==version` lines as {normalised name: version}; notes on what was left out."""
    packages: dict[str, str] = {}
    loose: list[str] = []
    dropped: list[str] = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = PIN.match(line)
        if not match:
            loose.append(line)
            continue
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        if name in NOT_NEEDED:
            dropped.append(name)
        else:
            packages[name] = match.group(2)
    notes = [f"not pinned, so not checked: {', '.join(loose)}"] if loose else []
    if dropped:
        notes.append(f"left out {', '.join(dropped)}: lastgood loads the model without it")
    return packages, notes


def examples(model: MLflowModel) -> tuple[tuple[GoldenExample, ...], list[str]]:
    """The saved input example as golden inputs (no expected output: mlflow stores none)."""
    info = model.meta.get("saved_input_example_info")
    name = info.get("artifact_path") if isinstance(info, Mapping) else None
    path = model.file(name, "input_example.json")
    if not path.is_file():
        return (), []
    try:
        records = example_records(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return (), [f"input example {path.name} unreadable ({type(exc).__name__}); ignored"]
    if records is None:
        return (), [f"input example {path.name} has a layout lastgood does not read; ignored"]
    notes = [f"kept the first {MAX_EXAMPLES} input examples"] if len(records) > MAX_EXAMPLES else []
    golden = tuple(GoldenExample(inputs=r, expected=None) for r in records[:MAX_EXAMPLES])
    return golden, notes


def example_records(data: Any) -> list[dict[str, Any]] | None:
    """Records from mlflow's example layouts: split, records, columnar or one record."""
    if isinstance(data, Mapping):
        for key in ("dataframe_split", "dataframe_records", "inputs", "instances"):
            if key in data:
                return example_records(data[key])
        if isinstance(data.get("columns"), list) and isinstance(data.get("data"), list):
            return [dict(zip(data["columns"], row, strict=True)) for row in data["data"]]
        if data and all(isinstance(v, list) for v in data.values()):
            length = {len(v) for v in data.values()}
            if len(length) == 1:
                return [{k: v[i] for k, v in data.items()} for i in range(length.pop())]
            return None
        return [dict(data)] if data else None
    if isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        return [dict(r) for r in data]
    return None


def _yaml(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, Mapping) else {}


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    except (OSError, UnicodeDecodeError):
        return []


def _python_env_lines(env: Mapping[str, Any]) -> list[str]:
    deps = env.get("dependencies")
    return [str(d) for d in deps] if isinstance(deps, list) else []


def _conda_python(conda: Mapping[str, Any]) -> str:
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, str) and re.match(r"^python\s*=", dep):
            return dep.split("=", 1)[1].strip().lstrip("=")
    return ""


def _conda_pip_lines(conda: Mapping[str, Any]) -> list[str]:
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, Mapping) and isinstance(dep.get("pip"), list):
            return [str(d) for d in dep["pip"]]
    return []
