"""The ASGI prediction gateway (Starlette): predict, feedback, status, health and metrics.

Wire format of `POST /v1/models/{name}/predict`:

    request:  {"records": [{"sepal_length": 5.1, ...}, ...]}
    response: {"model": "iris", "version": 3, "tag": "v1.2", "request_id": "…",
               "predictions": [0, ...]}     headers: X-Model-Version: 3, X-Request-Id: …

Bad input is answered 400 (not JSON), 413 (over `max_body_bytes`), 422 (schema: the body names
the field), 404 (model not served) — never 500, and never counted as a model error. A request
keeps the slot it took at its start even if a switch happens while it runs.

Other routes: GET /v1/models, GET /v1/models/{name} (live, standby, loading and refused slots),
GET /v1/models/{name}/stats (per-version live counters), GET
/v1/models/{name}/versions/{n}/evidence (sampled requests, responses and errors, for the
archive), POST /v1/models/{name}/feedback {"request_id", "label"?, "metrics"?: {name: number}}
(see `lastgood.serving.feedback`), /healthz, /readyz, /metrics, and /openapi.json (these native
routes, with each served model's predict body from its live version's input schema).

This module is the router: the predict call every protocol shares is `serving.predicting`, the
error statuses are the one table of every HTTP face (`services.http_statuses`), and the other
wire formats (Open Inference Protocol v2, MLflow `/invocations`, KServe v1) are thin
translations in `serving.protocols`.
Unknown routes and wrong methods answer JSON in the shape of the protocol the path belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lastgood.domain.errors import LastGoodError, MethodNotAllowed, NotFound
from lastgood.domain.versions import Version
from lastgood.ports import Clock
from lastgood.serving.blame import BlameOptions
from lastgood.serving.errors import (
    ModelFailed,
    RouteNotFound,
    error_response,
    json_response,
    status_for,
)
from lastgood.serving.feedback import parse_feedback
from lastgood.serving.inputs import MalformedBody, parse_records
from lastgood.serving.openapi import document
from lastgood.serving.predicting import Decoded, Predictions, read_body, request_id_of
from lastgood.serving.protocols import kserve_v1, mlflow_scoring, oip
from lastgood.serving.protocols.common import Handler
from lastgood.serving.state import ServingState

__all__ = ["GatewayOptions", "ModelFailed", "create_gateway", "error_response", "status_for"]

@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """Limits of the prediction endpoints."""

    max_body_bytes: int = 1_048_576
    # Predictions whose warm-up time predicts at most this many ms run inline on the loop;
    # slower ones go to the thread pool so the loop never stalls (see the benchmark note).
    inline_below_ms: float = 2.0
    prediction_threads: int = 4
    # The model `/invocations` (no name in the route) serves when the env has several.
    default_model: str | None = None
    # Model errors kept and replayed on the way back to tell the input's from the version's.
    blame: BlameOptions = field(default_factory=BlameOptions)


class _SlotCollector(Collector):
    """`lastgood_slot{model,version,role,state}` = 1 for every held slot, read at scrape time."""

    def __init__(self, state: ServingState) -> None:
        self._state = state

    def collect(self) -> Any:
        family = GaugeMetricFamily("lastgood_slot", "Slots held by this replica",
                                   labels=("model", "version", "role", "state"))
        for table in list(self._state.tables.values()):
            roles = [("live", table.live)] if table.live else []
            roles += [("standby", s) for s in table.standby.values()]
            for role, slot in roles:
                family.add_metric((table.model, str(slot.number), role, str(slot.state)), 1.0)
        yield family
        yield from self._versions()

    def _versions(self) -> Any:
        """Desired against live as numbers, so an alert can compare them per replica."""
        labels = ("model", "env")
        desired = GaugeMetricFamily("lastgood_desired_version", "The version the registry "
                                    "wants live, as this replica last read it", labels=labels)
        live = GaugeMetricFamily("lastgood_live_version", "The version this replica serves",
                                 labels=labels)
        env = self._state.env
        for model, number in sorted(self._state.desired.items()):
            desired.add_metric((model, env), float(number))
        for table in list(self._state.tables.values()):
            if table.live is not None:
                live.add_metric((table.model, env), float(table.live.number))
        yield desired
        yield live


_json = json_response


def _native_records(body: bytes, version: Version) -> Decoded:
    records = parse_records(body)
    if b'"params"' not in body:  # the common case reads the body once
        return Decoded(records)
    return Decoded(records, params=json.loads(body).get("params"))


class Gateway:
    """The endpoints, bound to one replica's state."""

    def __init__(self, state: ServingState, options: GatewayOptions, clock: Clock) -> None:
        self.state, self.options, self.clock = state, options, clock
        self.core = Predictions(state, clock=clock, threads=options.prediction_threads,
                                inline_below_ms=options.inline_below_ms,
                                max_body_bytes=options.max_body_bytes,
                                default_model=options.default_model, blame=options.blame)
        self.pool = self.core.pool

    async def predict(self, request: Request) -> Response:
        name = request.path_params["name"]
        request_id = request_id_of(request)
        try:
            answer = await self.core.answer(request, name, _native_records,
                                            request_id=request_id)
        except LastGoodError as exc:
            return error_response(exc, request_id)
        version = answer.version
        body = json.dumps({"model": name, "version": version.number, "tag": version.tag,
                           "request_id": request_id, "predictions": answer.predictions},
                          separators=(",", ":"), allow_nan=False)
        return Response(body, media_type="application/json",
                        headers={"X-Model-Version": str(version.number),
                                 "X-Request-Id": request_id})

    async def feedback(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            self.state.served(name)
            told = parse_feedback(json.loads(await read_body(request,
                                                             self.options.max_body_bytes)))
            scored = self.state.recorder.feedback(name, told)
        except LastGoodError as exc:
            return error_response(exc)
        except (ValueError, RecursionError) as exc:
            return error_response(MalformedBody(f"the body is not usable: {str(exc)[:160]}",
                                                fix="send valid JSON"))
        if scored is None:
            return error_response(NotFound(
                f"request {told.request_id!r} of {name!r} is not remembered",
                fix="send feedback soon after the prediction, once per request id"))
        return _json(scored)

    async def model(self, request: Request) -> Response:
        try:
            return _json(self.state.describe(request.path_params["name"]))
        except LastGoodError as exc:
            return error_response(exc)

    async def stats(self, request: Request) -> Response:
        try:
            return _json(self.state.live_stats(request.path_params["name"]))
        except LastGoodError as exc:
            return error_response(exc)

    async def evidence(self, request: Request) -> Response:
        try:
            name, version = request.path_params["name"], request.path_params["version"]
            self.state.served(name)
            return _json(self.state.evidence(name, version))
        except LastGoodError as exc:
            return error_response(exc)

    async def models(self, request: Request) -> Response:
        """`models` lists names (as KServe v1 does); `slots` describes each one's slots."""
        names = sorted(self.state.tables)
        return _json({"env": self.state.env, "models": names,
                      "slots": [self.state.describe(name) for name in names]})

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        reasons = self.state.unready()
        return _json({"ready": not reasons, "reasons": reasons}, 503 if reasons else 200)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.state.recorder.registry),
                        media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        guarded = getattr(request.app.state, "guarded_prefixes", ())
        return _json(document(self.state, guarded=guarded))


Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def native_routes(gw: Gateway) -> list[tuple[str, Handler, str]]:
    """lastgood's own routes: predict, feedback, status, evidence, health and metrics."""
    return [
        ("/v1/models/{name}/predict", gw.predict, "POST"),
        ("/v1/models/{name}/feedback", gw.feedback, "POST"),
        ("/v1/models/{name}/stats", gw.stats, "GET"),
        ("/v1/models/{name}/versions/{version:int}/evidence", gw.evidence, "GET"),
        ("/healthz", gw.healthz, "GET"),
        ("/readyz", gw.readyz, "GET"),
        ("/metrics", gw.metrics, "GET"),
        ("/openapi.json", gw.openapi, "GET"),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the JSON shape of the protocol whose prefix the path has."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        error: LastGoodError = MethodNotAllowed(
            f"{request.method} is not allowed on {path}", fix=f"use {allow or 'another method'}",
            details={"allow": allow})
    else:
        error = RouteNotFound(f"no route {path}",
                              fix="see the routes in the README's serving section")
    if oip.owns(path):
        return oip.error(error, None)
    if mlflow_scoring.owns(path):
        return mlflow_scoring.error(error, None)
    return error_response(error)


def create_gateway(state: ServingState, *, options: GatewayOptions = GatewayOptions(),
                   clock: Clock, lifespan: Lifespan | None = None) -> Starlette:
    """The ASGI app serving `state`; `lifespan` runs the reconciler in the server.

    The routes of every protocol share one `Predictions` core (slots, checks, counters);
    KServe v1's `:predict` comes before `/v1/models/{name}`, which would otherwise catch it.
    """
    gw = Gateway(state, options, clock)
    state.recorder.registry.register(_SlotCollector(state))
    # Starlette tries routes in order and a request pays for every pattern tried before its
    # own, so the POST routes (every door's predict) come first; the sort is stable, which
    # keeps KServe's `POST /v1/models/{name}:predict` apart from `GET /v1/models/{name}`.
    routes = sorted([*native_routes(gw), *kserve_v1.routes(gw.core),
                     ("/v1/models/{name}", gw.model, "GET"), ("/v1/models", gw.models, "GET"),
                     *oip.routes(gw.core), *mlflow_scoring.routes(gw.core)],
                    key=lambda route: route[2] != "POST")
    app = Starlette(routes=[Route(p, f, methods=[m]) for p, f, m in routes], lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error})
    app.state.gateway = gw
    return app
