"""The dashboard's routes: the page, its static files, and the live-metrics endpoint.

The page itself holds no data and needs no token; everything it shows comes from the control
plane's /api/v1 endpoints, called by the browser with the token the user typed in.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from lastgood.dashboard.metrics import LiveStats, MetricsSeries, baseline_of, tolerated_band
from lastgood.domain.access import Action
from lastgood.domain.errors import LastGoodError, TransientError
from lastgood.domain.history import MAX_BUCKETS, SPAN_PATTERN, parse_span
from lastgood.domain.history_view import judging_deployment, view_to_json
from lastgood.services.access import AccessService
from lastgood.services.container import Services
from lastgood.services.http_statuses import error_name, status_for

STATIC = Path(str(files("lastgood.dashboard") / "static"))

# The page may load only what the package ships: no CDN, no external fonts, no inline script.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
       "frame-ancestors 'none'; form-action 'self'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

bearer = HTTPBearer(auto_error=False, description="an API token: `lastgood token create`")


class MetricPoint(BaseModel):
    """One sample of the live version's serving counters."""

    t: str
    version: int
    latency_p95_ms: float | None
    error_rate: float | None
    accuracy: float | None


class Baseline(BaseModel):
    """The verified baseline in the charts' units (absent signals were not measured)."""

    latency_p95_ms: float | None = None
    error_rate: float | None = None
    accuracy: float | None = None


class LiveMetrics(BaseModel):
    """Points of the live version and the verified baseline they are judged against."""

    model: str
    env: str
    source: str | None  # None: no live metrics source is connected to this control plane
    points: list[MetricPoint]
    baseline: Baseline | None
    baseline_version: int | None
    band: dict[str, list[float]]  # baseline to what a default health policy tolerates


class ErrorBody(BaseModel):
    """What every refusal says: the error class, the problem and the way out."""

    error: str
    message: str
    fix: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "bad input"), (401, "missing, unknown, expired or revoked token"),
        (403, "the token's role may not read"), (404, "unknown model or environment"),
        (503, "the registry is unreachable"))
}


def error_response(exc: LastGoodError) -> JSONResponse:
    """The dashboard mounted without the control plane's error handlers: the same statuses."""
    return JSONResponse({"error": error_name(exc), "message": exc.message, "fix": exc.fix},
                        status_code=status_for(exc))


class Dashboard:
    """Holds what the routes need; services and the stats source are read per request, so the
    control plane may set `app.state.services` / `app.state.live_stats` after mounting."""

    def __init__(self, services: Services | None) -> None:
        self._services = services
        self.series = MetricsSeries()

    def services(self, request: Request) -> Services:
        found = self._services or getattr(request.app.state, "services", None)
        if found is None:
            raise TransientError("the dashboard has no services to read from",
                                 fix="call lastgood.dashboard.mount(app, services) or set "
                                     "app.state.services before serving")
        return cast(Services, found)

    def require_read(self, request: Request, credentials: HTTPAuthorizationCredentials | None,
                     *, model: str, env: str) -> Services:
        """Authenticate the bearer token and check it may read; denials are audited.

        The control plane's AccessService (`app.state.access`) decides, else the services' own.
        """
        services = self.services(request)
        access = cast(AccessService, getattr(request.app.state, "access", services.access))
        what = f"{request.method} {request.url.path}"
        principal = access.authenticate(credentials.credentials if credentials else None,
                                        request=what)
        access.authorize(principal, Action.READ, model=model, env=env, request=what)
        return services

    def metrics(self, request: Request, services: Services, model: str,
                env: str) -> LiveMetrics:
        status = services.deployments.status(model, env=env)
        # The record the live deployment is judged against: after a rollback, the restored
        # version's own, never the quarantined one's it was rolled back from.
        reference = judging_deployment(services.deployments.history(model, env=env),
                                       status.live) if status.live else None
        baseline = baseline_of(reference)
        source = cast(LiveStats | None, getattr(request.app.state, "live_stats", None))
        stats = source(model, env) if source is not None else None
        points = self.series.sample(model, env, stats, at=services.ports.clock.now())
        return LiveMetrics(
            model=model, env=env, source=stats.source if stats else None,
            points=[MetricPoint(**p) for p in points],
            baseline=Baseline(**baseline) if baseline is not None else None,
            baseline_version=reference.version if baseline is not None and reference else None,
            band=tolerated_band(baseline or {}))


def _router(board: Dashboard) -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/models/{name}/metrics", response_model=LiveMetrics, tags=["dashboard"],
                summary="Live metrics of the live version against its verified baseline",
                responses=ERRORS)
    def live_metrics(request: Request, name: str, env: Annotated[str, Query(min_length=1)],
                     credentials: Annotated[HTTPAuthorizationCredentials | None,
                                            Depends(bearer)]) -> LiveMetrics | JSONResponse:
        try:
            services = board.require_read(request, credentials, model=name, env=env)
            return board.metrics(request, services, name, env)
        except LastGoodError as exc:
            if LastGoodError in request.app.exception_handlers:
                raise  # the control plane's own error table renders it
            return error_response(exc)

    @router.get("/api/v1/models/{name}/metrics/history", tags=["dashboard"],
                summary="Metric history: points per version, baselines, markers",
                responses=ERRORS)
    def metric_history(request: Request, name: str, env: Annotated[str, Query(min_length=1)],
                       credentials: Annotated[HTTPAuthorizationCredentials | None,
                                              Depends(bearer)],
                       since: Annotated[str, Query(max_length=16, pattern=SPAN_PATTERN,
                                                   description="30m, 1h, 1d, 1w: held "
                                                               "within 1m..30d")]
                       = "1h",
                       buckets: Annotated[int, Query(ge=10, le=MAX_BUCKETS)] = MAX_BUCKETS
                       ) -> JSONResponse:
        try:
            services = board.require_read(request, credentials, model=name, env=env)
            # held within 1m..30d, so a URL cannot ask for a long scan
            span = parse_span(since, clamp=True)
            view = services.history.view(name, env=env, span=span, buckets=buckets)
        except LastGoodError as exc:
            if LastGoodError in request.app.exception_handlers:
                raise
            return error_response(exc)
        return JSONResponse(view_to_json(view), headers={"Cache-Control": "no-store"})

    @router.get("/dashboard", include_in_schema=False)
    def dashboard_slash() -> RedirectResponse:
        return RedirectResponse("/dashboard/", status_code=307)

    @router.get("/dashboard/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    return router


def mount(app: FastAPI, services: Services | None = None, *,
          live_stats: LiveStats | None = None) -> None:
    """Serve the dashboard at /dashboard/ and its live-metrics endpoint on `app`.

    `services` defaults to `app.state.services` (read per request); `live_stats` (else
    `app.state.live_stats`) is the serving stats source of the charts.
    """
    board = Dashboard(services)
    if live_stats is not None:
        app.state.live_stats = live_stats
    app.include_router(_router(board))
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
    if not any(getattr(r, "path", None) == "/" for r in app.router.routes):
        app.add_api_route("/", lambda: RedirectResponse("/dashboard/", status_code=307),
                          include_in_schema=False)
    app.state.dashboard = board
