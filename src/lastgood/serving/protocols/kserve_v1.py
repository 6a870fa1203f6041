"""KServe's v1 protocol (TensorFlow Serving's REST shape).

    POST /v1/models/{m}:predict   {"instances": [...]} or {"inputs": [...]}
                                  -> {"predictions": [...]}

`GET /v1/models` (`models`: the names) and `GET /v1/models/{m}` (`name`, `ready`) are lastgood's
own status routes, which carry KServe's fields. An instance is an object keyed by input name, a
list of values in schema order, or, for a model with one input, that input's value. Errors are
`{"error": "<problem — fix>"}` with the status of lastgood's table.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from lastgood.domain.errors import LastGoodError
from lastgood.domain.versions import Version
from lastgood.serving.errors import error_headers, json_response, status_for
from lastgood.serving.inputs import field_error
from lastgood.serving.predicting import Decoded, Predictions, request_id_of
from lastgood.serving.protocols.common import Route3, json_body, records_from_rows

__all__ = ["error", "routes"]

FIX = 'send {"instances": [{"column": value, ...}, ...]}'


def error(exc: LastGoodError, request_id: str | None) -> Response:
    """KServe's error shape: one string naming the problem and the fix."""
    return json_response({"error": exc.one_line()}, status_for(exc),
                         error_headers(exc, request_id))


def _decode(body: bytes, version: Version) -> Decoded:
    payload = json_body(body, FIX)
    if not isinstance(payload, dict):
        raise field_error("body", "expected a JSON object", FIX)
    given = [k for k in ("instances", "inputs") if k in payload]
    if len(given) != 1:
        what = "both instances and inputs" if given else "neither instances nor inputs"
        raise field_error("body", f"the body has {what}", FIX)
    key = given[0]
    extra = sorted(set(payload) - {key})
    if extra:
        raise field_error(extra[0], "unexpected member", FIX)
    return Decoded(records_from_rows(payload[key], version, key), path=key)


class KServeV1:
    def __init__(self, core: Predictions) -> None:
        self.core = core

    async def predict(self, request: Request) -> Response:
        name = request.path_params["name"]
        request_id = request_id_of(request)
        try:
            answer = await self.core.answer(request, name, _decode, request_id=request_id)
        except LastGoodError as exc:
            return error(exc, request_id)
        return json_response({"predictions": answer.predictions}, headers={
            "X-Model-Version": str(answer.version.number), "X-Request-Id": answer.request_id})


def routes(core: Predictions) -> list[Route3]:
    """KServe v1's predict route (before `/v1/models/{name}`, which would catch it)."""
    return [("/v1/models/{name}:predict", KServeV1(core).predict, "POST")]
