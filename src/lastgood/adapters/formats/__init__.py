"""Model formats: skops, ONNX, MLflow model directories and (with consent) pickle/joblib."""

from lastgood.adapters.formats.detect import Format, detect
from lastgood.adapters.formats.local import LocalModelFormats
from lastgood.adapters.formats.skops_format import TRUSTED_SKOPS_TYPES

__all__ = ["TRUSTED_SKOPS_TYPES", "Format", "LocalModelFormats", "detect"]
