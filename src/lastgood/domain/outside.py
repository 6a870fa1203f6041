"""Versions of outside model registries (MLflow), as lastgood imports them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class OutsideVersion:
    """One model version of an outside registry (MLflow), with what lastgood imports from it."""

    origin: str  # unique and stable: "mlflow:NAME/VERSION", or "mlflow-run:RUN/PATH"
    uri: str  # what to download: "models:/NAME/VERSION" or "runs:/RUN/PATH"
    model: str = ""  # the outside model name ("" for a bare run)
    version: str = ""  # the outside version ("" for a bare run)
    run_id: str = ""
    source: str = ""  # where the outside registry keeps the artifacts
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    url: str = ""  # the version's page in the outside registry's UI
