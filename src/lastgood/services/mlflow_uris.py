"""MLflow model URIs, parsed without importing mlflow."""

from __future__ import annotations

from dataclasses import dataclass

from lastgood.domain.errors import InvalidInput

SCHEMES = ("models:/", "runs:/")
FORMS = "models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or runs:/RUN_ID/PATH"


@dataclass(frozen=True, slots=True)
class ModelUri:
    """What a `models:/` or `runs:/` URI names."""

    model: str = ""
    version: str = ""
    alias: str = ""
    latest: bool = False
    run_id: str = ""
    path: str = ""


def is_mlflow_uri(text: str) -> bool:
    return text.startswith(SCHEMES)


def parse_uri(text: str) -> ModelUri:
    """Parse a URI; a malformed one is refused with the forms that work."""
    if text.startswith("runs:/"):
        run_id, _, path = text.removeprefix("runs:/").strip("/").partition("/")
        if not run_id or not path:
            raise InvalidInput(f"{text!r} names no model path in the run", fix=f"use {FORMS}")
        return ModelUri(run_id=run_id, path=path)
    if not text.startswith("models:/"):
        raise InvalidInput(f"{text!r} is not an MLflow model URI", fix=f"use {FORMS}")
    rest = text.removeprefix("models:/").strip("/")
    if "@" in rest:
        model, _, alias = rest.partition("@")
        if model and alias:
            return ModelUri(model=model, alias=alias)
    model, _, version = rest.rpartition("/")
    if model and version.isdigit():
        return ModelUri(model=model, version=version)
    if model and version.lower() == "latest":
        return ModelUri(model=model, latest=True)
    if model and version:
        raise InvalidInput(f"{text!r}: MLflow stages ({version!r}) are deprecated",
                           fix="use models:/NAME/VERSION or models:/NAME@ALIAS")
    raise InvalidInput(f"{text!r} names no version or alias", fix=f"use {FORMS}")
