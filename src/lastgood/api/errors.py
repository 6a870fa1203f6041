"""The handlers that turn every error into `{"error", "message", "fix", "details"}`, with the
status from the one table of every HTTP face (`lastgood.services.http_statuses`).

`error` is the class name in lastgood's error tree, so a client (the remote CLI) re-raises the
same class and exits with the same code as a local run.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from lastgood.api.deps import authenticate
from lastgood.domain.access import Action
from lastgood.domain.errors import LastGoodError, SchemaMismatch, Unauthorized
from lastgood.services.http_statuses import error_name, status_for

log = logging.getLogger(__name__)


HTTP_ERROR_NAMES: dict[int, tuple[str, str]] = {
    404: ("NotFound", "check the path against /openapi.json"),
    405: ("InvalidInput", "use a method /openapi.json lists for this path"),
}


class ErrorOut(BaseModel):
    """Every error response: the class in lastgood's error tree, the problem and its fix."""

    error: str
    message: str
    fix: str
    details: dict[str, Any] = {}


class SafeJSON(JSONResponse):
    """JSON with non-ASCII escaped, so any text a caller sent (even a lone surrogate) renders."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, default=str,
                          separators=(",", ":")).encode("ascii")


def error_response(name: str, message: str, fix: str, status: int, *,
                   details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> SafeJSON:
    body = {"error": name, "message": message, "fix": fix, "details": details or {}}
    return SafeJSON(body, status_code=status, headers=headers)


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(json.dumps(details, default=str))
    except ValueError:  # NaN and friends: keep the message, drop the details
        return {}
    return loaded


# The services audit their own refusals of these; the API records every other refused change.
SERVICE_AUDITED = frozenset({Action.DEPLOY, Action.ROLLBACK})
READS = frozenset({"GET", "HEAD", "OPTIONS"})


def audit_refusal(request: Request, error: LastGoodError, status: int) -> None:
    """Write a refused change (a non-read request answered 4xx) to the audit trail."""
    action = getattr(request.state, "action", None)
    refused_by_schema = getattr(request.state, "refused_by_schema", False)
    if request.method in READS or status in (401, 403) or status >= 500 \
            or (action in SERVICE_AUDITED and not refused_by_schema):
        return
    caller = getattr(request.state, "caller", None)
    access = request.app.state.access
    access.record_refusal(error, caller.actor if caller else "anonymous",
                          f"{request.method} {request.url.path}",
                          token_id=caller.principal.token_id if caller else None,
                          action=str(action or "request"),
                          model=getattr(request.state, "model", None),
                          env=getattr(request.state, "env", None), status=str(status))


def lastgood_error(request: Request, exc: Exception) -> SafeJSON:
    assert isinstance(exc, LastGoodError)
    status = status_for(exc)
    audit_refusal(request, exc, status)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
    return error_response(error_name(exc), exc.message, exc.fix, status,
                          details=_json_safe(exc.details), headers=headers)


def validation_error(request: Request, exc: Exception) -> SafeJSON:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/api/"):
        try:  # a body that is not even JSON fails before the route's dependencies: 401 first
            authenticate(request)
        except Unauthorized as denied:
            return lastgood_error(request, denied)
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                for e in exc.errors()[:5]]
    error = SchemaMismatch("invalid request: " + "; ".join(problems),
                           fix="fix the named fields; /openapi.json documents every request")
    name_refused_request(request)
    return lastgood_error(request, error)


ACTIONS = frozenset(a.value for a in Action)


def name_refused_request(request: Request) -> None:
    """A request its schema refused never reached its route (nor the service that audits a
    deploy or rollback): name what it asked for (`retire`, `deploy`, ...: the route's name)
    and the model or environment in its path, for the audit trail."""
    route = getattr(request.scope.get("endpoint"), "__name__", "")
    path = request.scope.get("path_params", {})
    request.state.refused_by_schema = True
    request.state.action = Action(route) if route in ACTIONS else None
    request.state.model = path.get("name")
    request.state.env = path.get("env")


def http_error(request: Request, exc: Exception) -> SafeJSON:
    assert isinstance(exc, HTTPException)
    name, fix = HTTP_ERROR_NAMES.get(exc.status_code, ("InvalidInput", "see /openapi.json"))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; list every method
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
    return error_response(name, str(exc.detail), fix, exc.status_code, headers=headers)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for the path template matching `path`."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "allow", None)
    if table is None:
        table = [(re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
                             + "$"), sorted(m.upper() for m in ops))
                 for template, ops in app.openapi().get("paths", {}).items()]
        app.state.allow = table
    return next((methods for pattern, methods in table if pattern.match(path)), [])


def unexpected_error(request: Request, exc: Exception) -> SafeJSON:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response("LastGoodError", f"internal error {type(exc).__name__}",
                          "report this as a lastgood bug with the request you sent", 500)


def install(app: FastAPI) -> None:
    """Register the handlers: lastgood errors by table, validation, HTTP errors, the rest."""
    app.add_exception_handler(LastGoodError, lastgood_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": desc} for status, desc in (
        (400, "malformed input"), (401, "missing, unknown, expired or revoked token"),
        (403, "the token's role does not allow this"), (404, "unknown model, version, env, ..."),
        (409, "conflict or precondition failed"), (413, "request body too large"),
        (422, "request does not match its schema"),
        (424, "switched, but verification failed: page a human"),
        (500, "internal or integrity error"), (503, "a dependency is unreachable: retry"))}
