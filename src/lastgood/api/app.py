"""`create_app(services)`: the control plane's FastAPI app over the services.

Every route authenticates its caller (401) and authorises the action for the token's role (403);
both denials are audited. Errors of any kind are `{"error", "message", "fix", "details"}` with the
status from the one table of every HTTP face (`services.http_statuses.STATUS`). The OpenAPI
document is at /openapi.json; the interactive docs are off because they load JavaScript from a
CDN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from lastgood import __version__
from lastgood.api import errors
from lastgood.api.errors import SafeJSON
from lastgood.api.limits import BodyLimit, limit_for
from lastgood.api.routes_access import routes as access_routes
from lastgood.api.routes_evidence import routes as evidence_routes
from lastgood.api.routes_mlflow import routes as mlflow_routes
from lastgood.api.routes_ops import routes as ops_routes
from lastgood.api.routes_registry import routes as registry_routes
from lastgood.api.uploads import document_upload
from lastgood.services.access import AccessService
from lastgood.services.container import Services


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """Limits and timings of the control plane."""

    max_body_bytes: int = 1024 * 1024  # JSON requests
    max_upload_bytes: int = 4 * 1024**3  # artifact uploads
    stream_poll_s: float = 1.0  # how often /stream looks for new events
    keepalive_s: float = 15.0  # comment lines on an idle stream


def create_app(services: Services, *, auth: AccessService | None = None,
               options: ApiOptions = ApiOptions()) -> FastAPI:
    """The control-plane app; `auth` defaults to the services' own AccessService."""
    app = FastAPI(title="lastgood control plane", version=__version__,
                  description="Put the last verified model version back into production.",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  default_response_class=SafeJSON)
    app.state.services = services
    app.state.access = auth or services.access
    app.state.options = options
    errors.install(app)
    app.add_middleware(BodyLimit, limit_for=limit_for(body=options.max_body_bytes,
                                                      upload=options.max_upload_bytes))
    for routes in (access_routes, registry_routes, ops_routes, evidence_routes, mlflow_routes):
        app.include_router(routes)
    publish_upload_parts(app)
    return app


def publish_upload_parts(app: FastAPI) -> None:
    """/openapi.json as FastAPI builds it, with the upload's parts described
    (`uploads.document_upload`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_upload(build())
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
