"""The data plane's own errors, and its rendering of every error.

Every protocol renders an error in its own shape (lastgood's, OIP's `{"error": "..."}`, MLflow's
`{"error_code", "message"}`), but the status always comes from the one table of every HTTP face,
`lastgood.services.http_statuses`, looked up by walking the exception's class hierarchy, so a
refusal means the same through every door and through the control plane's API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from lastgood.domain.errors import LastGoodError, NotFound
from lastgood.services.http_statuses import error_name, status_for

__all__ = ["ModelFailed", "RouteNotFound", "compact_json",
           "error_response", "json_response", "status_for"]

compact_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
"""Compact JSON, NaN refused (it is not JSON). One encoder: `json.dumps` with options builds a
new one per call, a measurable share of a small prediction's time."""


class ModelFailed(LastGoodError):
    """The model raised or returned something unusable on valid input (a model error)."""


class RouteNotFound(NotFound):
    """No route has this path (HTTP 404)."""


def json_response(body: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    """Compact JSON, NaN refused (it is not JSON)."""
    return Response(compact_json(body), status_code=status, headers=headers,
                    media_type="application/json")


def error_headers(exc: LastGoodError, request_id: str | None) -> dict[str, str]:
    """X-Request-Id when known, Retry-After on 503 and Allow on 405."""
    headers = {"X-Request-Id": request_id} if request_id else {}
    if status_for(exc) == 503:
        headers["Retry-After"] = "1"
    if "allow" in exc.details:
        headers["Allow"] = str(exc.details["allow"])
    return headers


def error_response(exc: LastGoodError, request_id: str | None = None) -> Response:
    """lastgood's own rendering of an error: status from the table, message, fix and field."""
    body: dict[str, Any] = {"error": {"type": error_name(exc), "message": exc.message,
                                      "fix": exc.fix}}
    if "field" in exc.details:
        body["error"]["field"] = exc.details["field"]
    return json_response(body, status_for(exc), error_headers(exc, request_id))
