"""MLflow's scoring protocol, as `mlflow models serve` speaks it.

    POST /invocations   application/json with exactly one of dataframe_split, dataframe_records,
                        instances, inputs (plus params, checked against the version's params
                        schema and filled with its defaults), or text/csv with a
                        header row; answers {"predictions": [...]}; other content types 415
    GET  /ping, /health 200 when every deployed model has a warm live slot, else 503
    GET  /version       lastgood's version, as text

`/invocations` names no model: it serves `--default-model`, or the environment's only model, and
otherwise refuses with 400 naming the models served. Errors are MLflow's
`{"error_code": "...", "message": "<problem — fix>"}` with the status of lastgood's table.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lastgood import __version__
from lastgood.domain.errors import LastGoodError, UnsupportedMediaType
from lastgood.domain.versions import Column, Version
from lastgood.services.golden_record import OUTPUT_FORM
from lastgood.serving.errors import error_headers, json_response, status_for
from lastgood.serving.inputs import MalformedBody, field_error
from lastgood.serving.predicting import Decoded, Predictions, request_id_of
from lastgood.serving.protocols.common import (
    Records,
    Route3,
    json_body,
    records_from_columns,
    records_from_rows,
)

__all__ = ["error", "owns", "routes"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_FIX = 'send exactly one of {"dataframe_split": ...}, {"dataframe_records": [...]}, ' \
           '{"instances": [...]} or {"inputs": ...}'
PATHS = ("/invocations", "/ping", "/health", "/version")
# MLflow's error codes (mlflow.protos.databricks_pb2), by the status lastgood's table gave
ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 404: "RESOURCE_DOES_NOT_EXIST",
               405: "BAD_REQUEST", 413: "REQUEST_LIMIT_EXCEEDED", 415: "BAD_REQUEST",
               422: "INVALID_PARAMETER_VALUE", 503: "TEMPORARILY_UNAVAILABLE"}


def owns(path: str) -> bool:
    """Whether a path belongs to this protocol (its errors take this protocol's shape)."""
    return path in PATHS


def error(exc: LastGoodError, request_id: str | None) -> Response:
    """MLflow's error shape."""
    status = status_for(exc)
    return json_response({"error_code": ERROR_CODES.get(status, "INTERNAL_ERROR"),
                          "message": exc.one_line()}, status, error_headers(exc, request_id))


def _media_type(header: str) -> str:
    mime, *params = (part.strip() for part in header.split(";"))
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            raise UnsupportedMediaType(f"Content-Type parameter {param!r} is not supported",
                                       fix="send UTF-8 with no other parameters")
    return mime.lower()


def _decoder(content_type: str) -> Callable[[bytes, Version], Decoded]:
    mime = _media_type(content_type)
    if mime == "application/json":
        return _from_json
    if mime == "text/csv":
        return _from_csv
    raise UnsupportedMediaType(f"Content-Type {content_type or 'none'!r} is not read here",
                               fix="send application/json or text/csv")


def _from_json(body: bytes, version: Version) -> Decoded:
    payload = json_body(body, JSON_FIX)
    if not isinstance(payload, dict):
        raise field_error("body", "expected a JSON object", JSON_FIX)
    given = [k for k in FORMATS if k in payload]
    if len(given) != 1:
        what = f"both {' and '.join(given)}" if given else "none of " + ", ".join(FORMATS)
        raise field_error("body", f"the body has {what}", JSON_FIX)
    extra = sorted(set(payload) - {given[0], "params"})
    if extra:
        raise field_error(extra[0], "unexpected member", JSON_FIX)
    key = given[0]
    return Decoded(_records(key, payload[key], version), path=key,
                   params=payload.get("params"))


def _records(key: str, value: Any, version: Version) -> Records:
    if key == "dataframe_split":
        return _split(value, version)
    if key == "dataframe_records":
        if not isinstance(value, list) or not value or not all(isinstance(r, dict)
                                                               for r in value):
            raise field_error(key, "expected a non-empty list of objects",
                              'send {"dataframe_records": [{"column": value}, ...]}')
        return value
    if isinstance(value, dict):  # {"column": [v0, v1, ...]}: one list per named input
        return records_from_columns(value, key)
    return records_from_rows(value, version, key)


def _split(value: Any, version: Version) -> Records:
    where = "dataframe_split"
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise field_error(where, 'expected {"columns": [...], "data": [[...], ...]}',
                          "send DataFrame.to_dict(orient='split')")
    columns = value.get("columns") or [c.name for c in version.schema.inputs]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise field_error(f"{where}.columns", "expected a list of names", "name every column")
    rows = value["data"]
    if not rows:
        raise field_error(f"{where}.data", "expected at least one row", "send a row")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise field_error(f"{where}.data[{i}]", f"expected a list of {len(columns)} values",
                              f"send one value per column: {', '.join(columns)}")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(text)


def _number(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = convert(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(text)
        return value

    return parse


def _guess(text: str, where: str) -> Any:
    """A cell of a version without a schema: an int, a finite float, or the text itself.
    `nan` or `inf` is refused: pandas would read it as a number, and no model can use it."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        raise field_error(where, f"{text[:30]!r} is not a finite number",
                          "send finite numbers (leave a missing value empty)")
    return value


CONVERT: Mapping[str, Callable[[str], Any]] = {
    "float64": _number(float), "float32": _number(float), "int64": int, "int32": int,
    "bool": _boolean, "string": str, "category": str, "datetime": str}


def _cell(text: str, column: Column | None, where: str) -> Any:
    if text == "":
        return None  # an empty cell is a missing value: the schema check names it
    if column is None:
        return _guess(text, where)
    try:
        return CONVERT.get(column.dtype, str)(text)
    except ValueError:
        finite = "a finite " if column.dtype.startswith("float") else ""
        raise field_error(where, f"{text[:30]!r} is not {finite}{column.dtype}",
                          f"send {column.name} as {column.dtype}") from None


def _from_csv(body: bytes, version: Version) -> Decoded:
    try:
        lines = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MalformedBody(f"the body is not UTF-8 CSV ({str(exc)[:120]})",
                            fix="send DataFrame.to_csv(index=False) output") from None
    lines = [line for line in lines if line]
    if len(lines) < 2:
        raise field_error("rows", "expected a header row and at least one row",
                          "send DataFrame.to_csv(index=False) output")
    header, rows = lines[0], lines[1:]
    columns = {c.name: c for c in version.schema.inputs}
    records: Records = []
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise field_error(f"rows[{i}]", f"{len(row)} cells under {len(header)} columns",
                              "send one cell per column on every row")
        records.append({name: _cell(text, columns.get(name), f"rows[{i}].{name}")
                        for name, text in zip(header, row, strict=True)})
    return Decoded(records, path="rows")


def as_mlflow_answers(predictions: list[Any], version: Version) -> Any:
    """The `predictions` `mlflow models serve` answers for the same batch (its
    predictions_to_json): {name: [...]} for several named outputs, one-column records for a
    Series or a one-column DataFrame, else one value per record."""
    kind, _, name = version.provenance.get(OUTPUT_FORM, "").partition(":")
    if kind == "dict" and predictions and all(isinstance(p, dict) for p in predictions):
        return {k: [p.get(k) for p in predictions] for k in predictions[0]}
    if kind in ("frame", "series") and name:
        return [{name: p} for p in predictions]
    return predictions


class Scoring:
    """The MLflow scoring handlers, translating onto the shared `Predictions` call."""

    def __init__(self, core: Predictions) -> None:
        self.core = core

    async def invocations(self, request: Request) -> Response:
        request_id = request_id_of(request)
        try:
            model = self.core.model_for_unnamed_route()
            decode = _decoder(request.headers.get("content-type", ""))
            answer = await self.core.answer(request, model, decode, request_id=request_id)
        except LastGoodError as exc:
            return error(exc, request_id)
        body = {"predictions": as_mlflow_answers(answer.predictions, answer.version)}
        return json_response(body, headers={
            "X-Model-Version": str(answer.version.number), "X-Request-Id": answer.request_id})

    async def ping(self, request: Request) -> Response:
        reasons = self.core.state.unready()
        if reasons:
            return json_response({"error_code": "TEMPORARILY_UNAVAILABLE",
                                  "message": "; ".join(reasons)}, 503, {"Retry-After": "1"})
        return Response("\n", media_type="application/json")

    async def version(self, request: Request) -> Response:
        return Response(__version__, media_type="text/plain")


def routes(core: Predictions) -> list[Route3]:
    """The MLflow scoring routes."""
    scoring = Scoring(core)
    return [("/invocations", scoring.invocations, "POST"), ("/ping", scoring.ping, "GET"),
            ("/health", scoring.ping, "GET"), ("/version", scoring.version, "GET")]



