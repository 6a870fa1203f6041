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
from lastgood.domain.compatibility import normal_name
from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Column, GoldenExample, GoldenSource, Param, Runtime
from lastgood.services.documents import example_records, spec_columns

Schema2 = tuple[tuple[Column, ...], tuple[Column, ...]]
# Preference order when no flavor is given: native loaders first, mlflow's own last.
SERVED = ("sklearn", "xgboost", "lightgbm", "onnx", "python_function")
MODEL_FILES = {"sklearn": ("pickled_model", "model.pkl"), "onnx": ("data", "model.onnx"),
               "xgboost": ("data", "model.xgb"), "lightgbm": ("data", "model.lgb")}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;,#]+)")
MAX_EXAMPLES = 20
MLFLOW_PINS = ("mlflow", "mlflow-skinny")
# libyaml's parser when PyYAML was built with it: the same safe subset, ~10x faster than the
# pure-Python one, which was most of the time a sync spent reading each version's MLmodel.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAVED_WITH = (("sklearn", "sklearn_version", "scikit-learn"), ("xgboost", "xgb_version", "xgboost"),
              ("lightgbm", "lgb_version", "lightgbm"), ("onnx", "onnx_version", "onnx"))


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
        meta = _safe_yaml((root / MLMODEL).read_text(encoding="utf-8"))
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
            f"the MLflow model {model.root.name} has flavor(s) {', '.join(model.flavors)}, "
            "none of which lastgood serves (sklearn, xgboost, lightgbm, onnx, python_function)",
            fix="log it with one of those flavors; any mlflow.pyfunc model is served through "
                "mlflow with pip install 'lastgood[mlflow]'")
    return found


def model_file(model: MLflowModel, flavor: str) -> Path | None:
    """The file holding the model of `flavor`; None for python_function (mlflow loads it)."""
    key = MODEL_FILES.get(flavor)
    return None if key is None else model.file(model.conf(flavor).get(key[0]), key[1])


def predict_fn(model: MLflowModel) -> str:
    """The method mlflow.pyfunc calls on the model (`pyfunc_predict_fn`: predict_proba, …)."""
    return str(model.conf("python_function").get("predict_fn") or "predict")


# pyfunc loaders that read the same files a native loader reads, without unpickling anything
SAFE_PYFUNC_LOADERS = {"mlflow.onnx": "", "mlflow.sklearn": "skops",
                       "mlflow.xgboost": "", "mlflow.lightgbm": "", "mlflow.catboost": ""}


def pyfunc_unpickles(model: MLflowModel) -> bool:
    """Whether mlflow.pyfunc.load_model would unpickle (run code from) this directory."""
    loader = str(model.conf("python_function").get("loader_module") or "")
    if loader not in SAFE_PYFUNC_LOADERS:
        return True
    flavor = loader.removeprefix("mlflow.")
    how = serialization(model, flavor)
    needed = SAFE_PYFUNC_LOADERS[loader]
    pickled_file = str(model.conf(flavor).get("data") or "").endswith(".pkl")
    return how in ("cloudpickle", "pickle") or bool(needed and how != needed) or pickled_file


def serialization(model: MLflowModel, flavor: str) -> str:
    """How MLflow wrote the flavor's file: skops, cloudpickle, pickle, ubj, … ("" if unsaid)."""
    conf = model.conf(flavor)
    return str(conf.get("serialization_format") or conf.get("model_format") or "")


def signature(model: MLflowModel) -> tuple[Schema2 | None, list[str]]:
    """Input and output columns from the MLmodel signature, if it has one lastgood can express.

    An unnamed tensor keeps the name "" here; the caller names it after the model's own input.
    """
    sig = model.meta.get("signature")
    if not isinstance(sig, Mapping) or not sig.get("inputs"):
        return None, ["the MLmodel has no signature: pass --input-schema to check the data "
                      "contract"]
    try:
        inputs = spec_columns(sig.get("inputs"), single="")
        outputs = spec_columns(sig.get("outputs"), single="prediction")
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"the signature in {model.root.name}/{MLMODEL} is malformed: {exc}",
                           fix="re-log the model with mlflow's infer_signature") from exc
    if inputs is None:
        return None, ["the signature has input types lastgood cannot express; pass "
                      "--input-schema"]
    return (inputs, outputs or ()), []


PARAM_TYPES = frozenset({"string", "integer", "long", "float", "double", "boolean", "datetime",
                         "object"})


def params_schema(model: MLflowModel) -> tuple[Param, ...]:
    """The inference params of the signature (MLflow's ParamSchema), none when it has none."""
    sig = model.meta.get("signature")
    raw = sig.get("params") if isinstance(sig, Mapping) else None
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
        params = tuple(Param(str(p["name"]), str(p["type"]), p.get("default"),
                             tuple(p.get("shape") or ())) for p in specs or ())
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"the params of the signature in {model.root.name}/{MLMODEL} are "
                           f"malformed: {exc}",
                           fix="re-log the model with mlflow's infer_signature(params=...)"
                           ) from exc
    unknown = [p.name for p in params if p.dtype not in PARAM_TYPES]
    if unknown:
        raise InvalidInput(f"param {unknown[0]!r} has a type lastgood does not check",
                           fix=f"use one of {', '.join(sorted(PARAM_TYPES))}")
    return params


def named(columns: Sequence[Column], names: Sequence[str]) -> tuple[Column, ...]:
    """Unnamed signature columns named in order after the model's own inputs (else `input`)."""
    out = []
    for index, column in enumerate(columns):
        if column.name:
            out.append(column)
            continue
        fallback = "input" if len(columns) == 1 else f"input_{index}"
        # one row tensor over several scalar features (an ndarray example) is not the first feature
        same = len(names) == len(columns) or not column.shape
        name = names[index] if index < len(names) and same else fallback
        out.append(Column(name, column.dtype, column.shape, column.optional))
    return tuple(out)


def runtime(model: MLflowModel, flavor: str) -> tuple[Runtime | None, list[str]]:
    """Python version and package pins from python_env.yaml, conda.yaml and requirements.txt.

    mlflow's own pin is left out unless mlflow loads the model (python_function; see
    `pyfunc_pins` for what a version moved to pyfunc at registration takes back).
    """
    env = model.conf("python_function").get("env")
    env = env if isinstance(env, Mapping) else {"conda": env}
    python_env = _yaml(model.file(env.get("virtualenv"), "python_env.yaml"))
    conda = model.file(env.get("conda"), "conda.yaml")  # read only when the others say nothing
    python = str(python_env.get("python") or _conda_python(_yaml(conda))
                 or model.conf("python_function").get("python_version") or "")
    lines = _lines(model.root / "requirements.txt") or _python_env_lines(python_env) \
        or _conda_pip_lines(_yaml(conda))
    packages, notes = pins(lines, drop=() if flavor == "python_function" else MLFLOW_PINS)
    for flavor, key, package in SAVED_WITH:  # each flavor records what it was saved with
        saved = model.conf(flavor).get(key)
        if saved and package not in packages:
            packages[package] = str(saved)
    if not python and not packages:
        return None, notes
    return Runtime(python=python, packages=packages), notes


def pyfunc_pins(model: MLflowModel, native: Runtime | None) -> dict[str, str]:
    """The pins serving through mlflow.pyfunc needs beyond the native path's (mlflow's own)."""
    full, _ = runtime(model, "python_function")
    kept = native.packages if native is not None else {}
    return {k: v for k, v in (full.packages if full else {}).items() if k not in kept}


def pins(lines: Sequence[str], *, drop: Sequence[str] = ()) -> tuple[dict[str, str], list[str]]:
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
        name = normal_name(match.group(1))
        if name in drop:
            dropped.append(name)
        else:
            packages[name] = match.group(2)
    notes = [f"not pinned, so not checked: {', '.join(loose)}"] if loose else []
    if dropped:
        notes.append(f"left out {', '.join(dropped)}: lastgood loads this flavor natively "
                     "without it")
    return packages, notes


def examples(model: MLflowModel, inputs: Sequence[Column]
             ) -> tuple[tuple[GoldenExample, ...], list[str]]:
    """The saved input example as golden inputs, with the inference params it was saved with
    (MLflow keeps them beside the input); their outputs are recorded at registration."""
    info = model.meta.get("saved_input_example_info")
    name = info.get("artifact_path") if isinstance(info, Mapping) else None
    path = model.file(name, "input_example.json")
    if not path.is_file():
        return (), []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = example_records(data, inputs)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return (), [f"input example {path.name} unreadable ({type(exc).__name__}); ignored"]
    if records is None:
        return (), [f"input example {path.name} has a layout lastgood does not read; ignored"]
    params = data.get("params") if isinstance(data, Mapping) else None
    params = dict(params) if isinstance(params, Mapping) else {}
    notes = [f"kept the first {MAX_EXAMPLES} input examples"] if len(records) > MAX_EXAMPLES else []
    golden = tuple(GoldenExample(inputs=r, expected=None, source=GoldenSource.UNCHECKED,
                                 params=params)
                   for r in records[:MAX_EXAMPLES])
    with_params = f", run with params {params}" if params else ""
    return golden, [*notes, f"{len(golden)} golden example(s) from the MLflow input "
                            f"example{with_params}"]


def _safe_yaml(text: str) -> Any:
    return yaml.load(text, Loader=SAFE_LOADER)  # a safe loader, C or Python


def _yaml(path: Path) -> Mapping[str, Any]:
    try:
        data = _safe_yaml(path.read_text(encoding="utf-8")) if path.is_file() else None
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
