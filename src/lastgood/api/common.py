"""Small helpers every route module shares: responses as views, routers, and input checks."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter

from lastgood.api.errors import ERROR_RESPONSES, SafeJSON
from lastgood.domain.errors import InvalidInput

PREFIX = "/api/v1"
ARCHIVE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_NUMBER = 2**31 - 1


def router(tag: str) -> APIRouter:
    """A router under /api/v1 whose every operation documents the error responses."""
    return APIRouter(prefix=PREFIX, tags=[tag], responses=dict(ERROR_RESPONSES))


def ok(view: Any, status: int = 200) -> SafeJSON:
    """The view itself as the response body (the response model only documents it)."""
    return SafeJSON(view, status_code=status)


def check_ref(ref: str | int) -> str:
    """A version reference as text, refusing numbers no registry can hold."""
    text = str(ref).strip()
    if text.isdigit() and int(text) > MAX_NUMBER:
        raise InvalidInput(f"version {text} is out of range",
                           fix="use a version number from `versions` or a tag")
    return text


def check_archive_id(archive_id: str) -> str:
    """An archive id is a plain name: nothing that could point outside the archive table."""
    if not ARCHIVE_ID.match(archive_id):
        raise InvalidInput(f"invalid archive id {archive_id!r}",
                           fix="use an id from GET /api/v1/archives (e.g. arc-op-...)")
    return archive_id
