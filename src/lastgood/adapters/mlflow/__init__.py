"""MLflow Model Registry: import from it, mirror lastgood's truth back to it (mlflow optional)."""

from lastgood.adapters.mlflow.client import MlflowRegistry
from lastgood.services.mlflow_uris import is_mlflow_uri, parse_uri

__all__ = ["MlflowRegistry", "is_mlflow_uri", "parse_uri"]
