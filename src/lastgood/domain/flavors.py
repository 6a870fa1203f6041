"""What each flavor's loader needs on the serving host: pure data shared by registration (which
pins to capture), the preflight runtime check (which pins matter) and the formats (the extra to
name when a package is missing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lastgood.domain.versions import Column, GoldenExample, Param, Runtime


@dataclass(frozen=True, slots=True)
class Flavor:
    """How a version is loaded and fed, and which distributions that takes."""

    name: str
    requires: tuple[str, ...]  # lastgood's loader imports these: missing on the host is a refusal
    reads: tuple[str, ...] = ()  # deserialise the artifact when pinned (skops, cloudpickle, …)
    extra: str | None = None  # `pip install 'lastgood[extra]'` brings `requires`
    runs_model_code: bool = False  # the model's own code runs (pyfunc): every pin matters

    @property
    def install_hint(self) -> str:
        """The command that brings what this flavor's loader needs."""
        if self.extra:
            return f"pip install 'lastgood[{self.extra}]'"
        return f"pip install {' '.join(self.requires)}"

    def judges(self, package: str) -> bool:
        """Whether a pin of `package` decides if this flavor loads and predicts the same."""
        return self.runs_model_code or package in self.requires or package in self.reads


_SKLEARN_READS = ("skops", "cloudpickle", "joblib")

FLAVORS: Mapping[str, Flavor] = {
    "sklearn": Flavor("sklearn", ("scikit-learn", "numpy", "scipy"), _SKLEARN_READS),
    "pickle": Flavor("pickle", ("scikit-learn", "numpy", "scipy", "joblib"), _SKLEARN_READS),
    "onnx": Flavor("onnx", ("onnxruntime", "numpy")),
    "xgboost": Flavor("xgboost", ("xgboost", "numpy"), ("scikit-learn", "skops"),
                      extra="xgboost"),
    "lightgbm": Flavor("lightgbm", ("lightgbm", "numpy"), ("scikit-learn", "skops"),
                       extra="lightgbm"),
    "python_function": Flavor("python_function", ("mlflow",), extra="mlflow",
                              runs_model_code=True),
}


def flavor(name: str) -> Flavor:
    """The flavor called `name`; an unknown one is judged as model code (every pin matters)."""
    return FLAVORS.get(name) or Flavor(name, (), runs_model_code=True)


@dataclass(frozen=True, slots=True)
class Inspection:
    """What a model format tells about an artifact before it is registered."""

    flavor: str
    schema: tuple[tuple[Column, ...], tuple[Column, ...]] | None = None
    runtime: Runtime | None = None
    golden: tuple[GoldenExample, ...] = ()
    unsafe: bool = False
    notes: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()  # inference params the model takes (MLflow's ParamSchema)
    # Pins the native path leaves out (mlflow's own) that serving through mlflow.pyfunc needs:
    # registration adds them when the reference check moves the version to pyfunc.
    pyfunc_packages: Mapping[str, str] = field(default_factory=dict)
    native_notes: tuple[str, ...] = ()  # true only while the native path serves it
