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
(see `lastgood.serving.feedback`), /healthz, /readyz, /metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lastgood.domain.errors import InvalidInput, LastGoodError, NotFound, TransientError
from lastgood.ports import Clock
from lastgood.serving.feedback import parse_feedback
from lastgood.serving.inputs import MalformedBody, PayloadTooLarge, check_records, parse_records
from lastgood.serving.loading import plain
from lastgood.serving.slots import Slot
from lastgood.serving.state import NotServing, ServingState

__all__ = ["GatewayOptions", "ModelFailed", "create_gateway", "status_for"]

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class ModelFailed(LastGoodError):
    """The model raised or returned something unusable on valid input (a model error)."""


STATUS: Mapping[type[BaseException], int] = {
    PayloadTooLarge: 413, MalformedBody: 400, InvalidInput: 422, NotFound: 404,
    TransientError: 503, LastGoodError: 500,
}


def status_for(exc: BaseException) -> int:
    """The HTTP status of an error, found by walking its class hierarchy (one table)."""
    return next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 500)


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """Limits of the prediction endpoint."""

    max_body_bytes: int = 1_048_576
    # Predictions whose warm-up time predicts at most this many ms run inline on the loop;
    # slower ones go to the thread pool so the loop never stalls (see the benchmark note).
    inline_below_ms: float = 2.0
    prediction_threads: int = 4


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


class _UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), status_code=status,
                    headers=headers, media_type="application/json")


def error_response(exc: LastGoodError, request_id: str | None = None) -> Response:
    """The one rendering of an error: status from the table, message, fix and field."""
    status = status_for(exc)
    body: dict[str, Any] = {"error": {"type": type(exc).__name__, "message": exc.message,
                                      "fix": exc.fix}}
    if "field" in exc.details:
        body["error"]["field"] = exc.details["field"]
    headers = {"X-Request-Id": request_id} if request_id else {}
    if status == 503:
        headers["Retry-After"] = "1"
    return _json(body, status, headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with PayloadTooLarge as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes, over the {limit} byte limit",
                              fix="send fewer records per request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the {limit} byte limit",
                                  fix="send fewer records per request")
        chunks.append(chunk)
    return b"".join(chunks)


class Gateway:
    """The endpoints, bound to one replica's state."""

    def __init__(self, state: ServingState, options: GatewayOptions, clock: Clock) -> None:
        self.state, self.options, self.clock = state, options, clock
        self.pool = ThreadPoolExecutor(max_workers=options.prediction_threads,
                                       thread_name_prefix="lastgood-predict")

    async def predict(self, request: Request) -> Response:
        name = request.path_params["name"]
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        try:
            table = self.state.served(name)
            records = parse_records(await read_body(request, self.options.max_body_bytes))
            slot = table.acquire()
            if slot is None:
                raise NotServing(f"model {name!r} has no warm version on this replica yet",
                                 fix="retry shortly; GET /readyz says what is still loading")
        except InvalidInput as exc:
            self.state.recorder.rejected(name, type(exc).__name__)
            return error_response(exc, request_id)
        except LastGoodError as exc:
            return error_response(exc, request_id)
        try:
            return await self._predict_on(slot, name, records, request_id)
        finally:
            slot.leave()

    async def _predict_on(self, slot: Slot, name: str, records: list[Mapping[str, Any]],
                          request_id: str) -> Response:
        try:
            check_records(records, slot.version.schema.inputs)
        except InvalidInput as exc:
            self.state.recorder.rejected(name, type(exc).__name__)
            return error_response(exc, request_id)
        start = time.perf_counter()
        try:
            predictions = await self._run(slot, records)
            body = json.dumps({"model": name, "version": slot.number, "tag": slot.version.tag,
                               "request_id": request_id, "predictions": predictions},
                              separators=(",", ":"), allow_nan=False)
        except InvalidInput as exc:  # the model's own input check: still the caller's mistake
            self.state.recorder.rejected(name, type(exc).__name__)
            return error_response(exc, request_id)
        except Exception as exc:
            seconds = time.perf_counter() - start
            self.state.recorder.failure(name, slot.number, request_id=request_id,
                                        records=records, error=f"{type(exc).__name__}: {exc}",
                                        seconds=seconds, at=self.clock.now())
            failed = ModelFailed(f"{slot.version.ref} failed: {type(exc).__name__}",
                                 fix=f"see /v1/models/{name}/stats; roll back if it persists")
            return error_response(failed, request_id)
        self.state.recorder.success(name, slot.number, request_id=request_id, records=records,
                                    predictions=predictions, seconds=time.perf_counter() - start,
                                    at=self.clock.now())
        return Response(body, media_type="application/json",
                        headers={"X-Model-Version": str(slot.number), "X-Request-Id": request_id})

    async def _run(self, slot: Slot, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        predictor = slot.predictor
        if predictor is None:
            raise RuntimeError(f"{slot.version.ref} holds no predictor ({slot.state})")
        estimate = slot.per_record_ms
        if estimate is not None and estimate * len(records) <= self.options.inline_below_ms:
            outputs = predictor.predict(records)
        else:
            loop = asyncio.get_running_loop()
            outputs = await loop.run_in_executor(self.pool, predictor.predict, records)
        result = plain(outputs)
        if not isinstance(result, list) or len(result) != len(records):
            got = len(result) if isinstance(result, list) else "no list of"
            raise ValueError(f"{len(records)} records gave {got} predictions")
        return result

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
        return _json({"env": self.state.env, "models": [
            self.state.describe(name) for name in sorted(self.state.tables)]})

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        reasons = self.state.unready()
        return _json({"ready": not reasons, "reasons": reasons}, 503 if reasons else 200)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.state.recorder.registry),
                        media_type=CONTENT_TYPE_LATEST)


Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def create_gateway(state: ServingState, *, options: GatewayOptions = GatewayOptions(),
                   clock: Clock | None = None, lifespan: Lifespan | None = None) -> Starlette:
    """The ASGI app serving `state`; `lifespan` runs the reconciler in the server."""
    gw = Gateway(state, options, clock or _UtcClock())
    state.recorder.registry.register(_SlotCollector(state))
    routes: list[tuple[str, Callable[[Request], Awaitable[Response]], str]] = [
        ("/v1/models/{name}/predict", gw.predict, "POST"),
        ("/v1/models/{name}/feedback", gw.feedback, "POST"),
        ("/v1/models/{name}/stats", gw.stats, "GET"),
        ("/v1/models/{name}/versions/{version:int}/evidence", gw.evidence, "GET"),
        ("/v1/models/{name}", gw.model, "GET"),
        ("/v1/models", gw.models, "GET"),
        ("/healthz", gw.healthz, "GET"),
        ("/readyz", gw.readyz, "GET"),
        ("/metrics", gw.metrics, "GET"),
    ]
    app = Starlette(routes=[Route(p, f, methods=[m]) for p, f, m in routes], lifespan=lifespan)
    app.state.gateway = gw
    return app
