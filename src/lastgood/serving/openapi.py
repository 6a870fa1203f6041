"""`GET /openapi.json` of a replica: its native doors (predict, feedback, models, stats,
evidence, health, readiness, metrics) as an OpenAPI 3.1 document, built on each request from
what the replica serves now.

A predict body is checked against the input schema of the version that answers it, so each
served model gets its own predict path whose body schema is that version's columns (names,
dtypes, shapes, optional ones); a model registered without an input schema takes any records.
The other wire formats (Open Inference Protocol v2, MLflow `/invocations`, KServe v1) follow
their own published specifications and are not repeated here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lastgood import __version__
from lastgood.domain.versions import Column, Version
from lastgood.serving.feedback import MAX_MAGNITUDE, MAX_METRICS_PER_CALL, METRIC_NAME
from lastgood.serving.inputs import INT_RANGES
from lastgood.serving.state import ServingState

__all__ = ["document"]

Schema = dict[str, Any]
JSON = "application/json"

DTYPES: Mapping[str, Schema] = {
    "float64": {"type": "number"}, "float32": {"type": "number"},
    "int64": {"type": "integer", "minimum": INT_RANGES["int64"][0],
              "maximum": INT_RANGES["int64"][1]},
    "int32": {"type": "integer", "minimum": INT_RANGES["int32"][0],
              "maximum": INT_RANGES["int32"][1]},
    "bool": {"type": "boolean"}, "string": {"type": "string"}, "category": {"type": "string"},
    "datetime": {"type": "string", "format": "date-time"},
}

ERROR: Schema = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["type", "message", "fix"],
        "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                       "fix": {"type": "string"},
                       "field": {"type": "string", "description": "the offending field"}}}}}

ERRORS: Mapping[str, str] = {
    "400": "the body is not JSON", "404": "the model is not served here",
    "405": "wrong method",
    "409": "well formed, but not for that request: a label list of another length than its "
           "records, or a metric name past the ones a version counts",
    "413": "the body is over the size limit",
    "415": "an unsupported Content-Encoding",
    "422": "the body does not fit the schema; `field` names where",
    "500": "the model failed on valid input (counted as a model error)",
    "503": "no warm version of the model on this replica yet: retry",
}


def _column(column: Column, shape: Sequence[int]) -> Schema:
    if shape:
        inner = _column(column, shape[1:])
        sized = {"minItems": shape[0], "maxItems": shape[0]} if shape[0] > 0 else {}
        return {"type": "array", "items": inner, **sized}
    return dict(DTYPES.get(column.dtype, {}))


def record_schema(version: Version) -> Schema:
    """One record of `version`'s predict body: its input columns, exactly."""
    columns = version.schema.inputs
    if not columns:
        return {"type": "object", "description": "any record (no input schema registered)"}
    properties = {}
    for column in columns:
        value = _column(column, column.shape)
        properties[column.name] = {"anyOf": [value, {"type": "null"}]} if column.optional \
            else value
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": [c.name for c in columns if not c.optional]}


def _responses(ok: Schema, *errors: str, description: str = "OK") -> Schema:
    out: Schema = {"200": {"description": description, "content": {JSON: {"schema": ok}}}}
    for status in errors:
        out[status] = {"description": ERRORS[status], "content": {JSON: {"schema": ERROR}}}
    return out


def _name(served: Sequence[str]) -> Schema:
    """The `name` path parameter: one of the models served now (any other is a 404)."""
    schema: Schema = {"type": "string", "enum": list(served)} if served else {"type": "string"}
    return {"name": "name", "in": "path", "required": True, "schema": schema,
            "description": "a model this replica serves"}


REQUEST_ID_HEADER: Schema = {
    "name": "X-Request-Id", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "kept as the request id when it is 1 to 64 of A-Z a-z 0-9 . _ : -, "
                   "else a fresh one is made"}

PREDICTED: Schema = {
    "type": "object", "required": ["model", "version", "tag", "request_id", "predictions"],
    "properties": {"model": {"type": "string"}, "version": {"type": "integer"},
                   "tag": {"type": ["string", "null"]}, "request_id": {"type": "string"},
                   "predictions": {"type": "array", "description": "one per record"}}}


def predict_path(model: str, version: Version) -> Schema:
    body = {"type": "object", "required": ["records"], "additionalProperties": False,
            "properties": {"records": {"type": "array", "minItems": 1,
                                       "items": record_schema(version)}}}
    responses = _responses(PREDICTED, "400", "413", "415", "422", "500", "503")
    responses["200"]["links"] = {"feedback": {  # what a client does next with the answer
        "operationId": "feedback", "parameters": {"path.name": "$response.body#/model"},
        "requestBody": {"request_id": "$response.body#/request_id"}}}
    return {"post": {
        "summary": f"Predict with {model}'s live version ({version.ref})",
        "operationId": f"predict-{model}", "parameters": [REQUEST_ID_HEADER],
        "requestBody": {"required": True, "content": {JSON: {"schema": body}}},
        "responses": responses}}


METRICS: Schema = {
    "type": "object", "maxProperties": MAX_METRICS_PER_CALL,
    "propertyNames": {"pattern": METRIC_NAME.pattern},
    "additionalProperties": {"type": "number", "minimum": -MAX_MAGNITUDE,
                             "maximum": MAX_MAGNITUDE}}

FEEDBACK: Schema = {
    "type": "object", "required": ["request_id"],
    "properties": {"request_id": {"type": "string",
                                  "description": "the X-Request-Id of a prediction"},
                   "label": {"description": "the true answer (any JSON; a list for a request "
                                            "of several records)"},
                   "metrics": METRICS},
    "anyOf": [{"required": ["label"]},
              {"required": ["metrics"], "properties": {"metrics": {"minProperties": 1}}}]}

SCORED: Schema = {
    "type": "object", "required": ["request_id", "version"],
    "properties": {"request_id": {"type": "string"}, "version": {"type": "integer"},
                   "correct": {"anyOf": [{"type": "boolean"},
                                         {"type": "array", "items": {"type": "boolean"}}]},
                   "metrics": {"type": "array", "items": {"type": "string"}}}}

SLOT: Schema = {"type": "object", "required": ["version", "state"],
                "properties": {"version": {"type": "integer"},
                               "tag": {"type": ["string", "null"]},
                               "state": {"type": "string"}}}

MODEL: Schema = {"type": "object",
                 "required": ["name", "ready", "model", "live", "standby", "loading", "failed"],
                 "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"},
                                "model": {"type": "string"},
                                "live": {"anyOf": [SLOT, {"type": "null"}]},
                                "live_since": {"type": ["string", "null"]},
                                "standby": {"type": "array", "items": SLOT},
                                "loading": {"type": "array", "items": SLOT},
                                "failed": {"type": "array", "items": SLOT}}}

MODELS: Schema = {"type": "object", "required": ["env", "models", "slots"],
                  "properties": {"env": {"type": "string"},
                                 "models": {"type": "array", "items": {"type": "string"}},
                                 "slots": {"type": "array", "items": MODEL}}}

STATS: Schema = {"type": "object", "required": ["model", "env", "live_version", "versions"],
                 "properties": {"model": {"type": "string"}, "env": {"type": "string"},
                                "live_version": {"type": ["integer", "null"]},
                                "versions": {"type": "array", "items": {"type": "object"}}}}

READY: Schema = {"type": "object", "required": ["ready", "reasons"],
                 "properties": {"ready": {"type": "boolean"},
                                "reasons": {"type": "array", "items": {"type": "string"}}}}


def _get(summary: str, ok: Schema, *errors: str, params: Sequence[Schema] = ()) -> Schema:
    return {"get": {"summary": summary, "parameters": list(params),
                    "responses": _responses(ok, *errors)}}


def fixed_paths(served: Sequence[str]) -> dict[str, Schema]:
    """The routes whose shape does not depend on the served versions' schemas."""
    version = {"name": "version", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 0}}
    feedback = {"post": {
        "summary": "A label and/or metrics about an earlier prediction",
        "operationId": "feedback",
        "parameters": [_name(served)],
        "requestBody": {"required": True, "content": {JSON: {"schema": FEEDBACK}}},
        "responses": _responses(SCORED, "400", "404", "409", "413", "415", "422")}}
    ready = _get("Ready when every deployed model has a warm live slot", READY)
    ready["get"]["responses"]["503"] = {"description": "not ready: the reasons",
                                        "content": {JSON: {"schema": READY}}}
    return {
        "/v1/models": _get("The models served, with their slots", MODELS),
        "/v1/models/{name}": _get("One model's live, standby and loading slots", MODEL, "404",
                                  params=[_name(served)]),
        "/v1/models/{name}/stats": _get("Per-version live counters", STATS, "404",
                                        params=[_name(served)]),
        "/v1/models/{name}/versions/{version}/evidence": _get(
            "Sampled requests, responses and errors of one version", {"type": "object"},
            "404", params=[_name(served), version]),
        "/v1/models/{name}/feedback": feedback,
        "/healthz": _get("The process answers", {"type": "object", "required": ["status"],
                                                 "properties": {"status": {"const": "ok"}}}),
        "/readyz": ready,
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
            "description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }


def _require_token(paths: dict[str, Schema], guarded: Sequence[str]) -> None:
    for path, item in paths.items():
        if path.startswith(tuple(guarded)):
            for operation in item.values():
                operation["security"] = [{"prediction_token": []}]
                operation["responses"]["401"] = {
                    "description": "no or a wrong prediction token",
                    "content": {JSON: {"schema": {"type": "object"}}}}


def document(state: ServingState, *, guarded: Sequence[str] = ()) -> dict[str, Any]:
    """The replica's OpenAPI document, as of now; paths starting with one of `guarded` need the
    prediction token (LASTGOOD_SERVE_TOKEN)."""
    paths = fixed_paths(sorted(state.tables))
    for model, table in sorted(state.tables.items()):
        if table.live is not None:
            paths[f"/v1/models/{model}/predict"] = predict_path(model, table.live.version)
    _require_token(paths, guarded)
    security = {"securitySchemes": {"prediction_token": {
        "type": "http", "scheme": "bearer",
        "description": "LASTGOOD_SERVE_TOKEN of the replica"}}} if guarded else {}
    return {"openapi": "3.1.0", "components": security,
            "info": {"title": f"lastgood serving ({state.env})", "version": __version__,
                     "description": "A replica's native prediction API. Open Inference "
                                    "Protocol v2 (/v2), MLflow (/invocations) and KServe v1 "
                                    "(:predict) follow their own specifications."},
            "paths": paths}
