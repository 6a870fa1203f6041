"""The data plane's errors and the one table of their HTTP statuses.

Every protocol renders an error in its own shape (lastgood's, OIP's `{"error": "..."}`, MLflow's
`{"error_code", "message"}`), but the status always comes from `STATUS`, looked up by walking the
exception's class hierarchy, so a refusal means the same through every door.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from lastgood.domain.errors import InvalidInput, LastGoodError, NotFound, TransientError
from lastgood.serving.inputs import (
    MalformedBody,
    NoDefaultModel,
    PayloadTooLarge,
    UnsupportedMediaType,
)

__all__ = ["STATUS", "MethodNotAllowed", "ModelFailed", "RouteNotFound", "error_response",
           "json_response", "status_for"]


class ModelFailed(LastGoodError):
    """The model raised or returned something unusable on valid input (a model error)."""


class RouteNotFound(NotFound):
    """No route has this path (HTTP 404)."""


class MethodNotAllowed(InvalidInput):
    """The path exists, the method does not (HTTP 405)."""


STATUS: Mapping[type[BaseException], int] = {
    PayloadTooLarge: 413, UnsupportedMediaType: 415, MethodNotAllowed: 405,
    MalformedBody: 400, NoDefaultModel: 400, InvalidInput: 422, NotFound: 404,
    TransientError: 503, ModelFailed: 500, LastGoodError: 500,
}


def status_for(exc: BaseException) -> int:
    """The HTTP status of an error, found by walking its class hierarchy (one table)."""
    return next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 500)


def json_response(body: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    """Compact JSON, NaN refused (it is not JSON)."""
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False),
                    status_code=status, headers=headers, media_type="application/json")


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
    body: dict[str, Any] = {"error": {"type": type(exc).__name__, "message": exc.message,
                                      "fix": exc.fix}}
    if "field" in exc.details:
        body["error"]["field"] = exc.details["field"]
    return json_response(body, status_for(exc), error_headers(exc, request_id))
