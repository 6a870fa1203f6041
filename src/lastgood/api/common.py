"""Small helpers every route module shares: responses as views, routers, and input checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from lastgood.api.errors import ERROR_RESPONSES, SafeJSON
from lastgood.api.schemas import ARCHIVE_ID, NAME, REF

PREFIX = "/api/v1"

# Path parameters, with the rules the server enforces (and /openapi.json publishes).
ModelPath = Annotated[str, Path(min_length=1, max_length=128, pattern=NAME,
                                description="a model name, e.g. fraud-detector")]
EnvPath = Annotated[str, Path(min_length=1, max_length=128, pattern=NAME,
                              description="an environment name, e.g. production")]
RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF,
                              description="a version number or tag")]
ArchivePath = Annotated[str, Path(pattern=ARCHIVE_ID,
                                  description="an id from GET /api/v1/archives")]


def router(tag: str) -> APIRouter:
    """A router under /api/v1 whose every operation documents the error responses."""
    return APIRouter(prefix=PREFIX, tags=[tag], responses=dict(ERROR_RESPONSES))


def ok(view: Any, status: int = 200) -> SafeJSON:
    """The view itself as the response body (the response model only documents it)."""
    return SafeJSON(view, status_code=status)


def check_ref(ref: str | int) -> str:
    """A version reference as the services take it (the schema has checked its form)."""
    return str(ref)
