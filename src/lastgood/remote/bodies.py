"""Request bodies the remote CLI sends: the inverse of what the API parses into requests."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from lastgood.domain.codec import columns_to_json, custom_check_to_json
from lastgood.domain.deployments import CustomCheck
from lastgood.domain.versions import Column
from lastgood.services.registry import RegisterRequest


def register_meta(req: RegisterRequest, *, directory: bool) -> dict[str, Any]:
    """The `meta` form field of an upload (RegisterMeta in /openapi.json)."""
    meta: dict[str, Any] = {
        "tag": req.tag, "flavor": req.flavor, "metrics": dict(req.metrics),
        "requires": [f"{name}=={version}" for name, version in req.requires.items()],
        "python": req.python, "provenance": dict(req.provenance), "labels": list(req.labels),
        "allow_pickle": req.allow_pickle, "directory": directory,
        "signature": req.signature, "signed_by": req.signed_by,
    }
    if req.schema is not None:
        meta["schema"] = {"inputs": columns_to_json(req.schema.inputs),
                          "outputs": columns_to_json(req.schema.outputs)}
    if req.golden:
        meta["golden"] = [{"input": dict(g.inputs), "output": g.expected,
                           "tolerance": g.tolerance,
                           **({"tolerances": dict(g.tolerances)} if g.tolerances else {}),
                           **({"params": dict(g.params)} if g.params else {})}
                          for g in req.golden]
    return meta


def _value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        if value and all(isinstance(v, Column) for v in value):
            return columns_to_json(value)
        return [_value(v) for v in value]
    if isinstance(value, CustomCheck):
        return custom_check_to_json(value)
    return value


def environment_body(changes: Mapping[str, Any]) -> dict[str, Any]:
    """An environment's changes (domain values) as the JSON of EnvironmentIn."""
    return {key: _value(value) for key, value in changes.items()}
