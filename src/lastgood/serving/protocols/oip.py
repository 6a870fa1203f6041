"""Open Inference Protocol v2 (REST), as KServe, Triton, MLServer and Seldon Core 2 speak it.

    GET  /v2                                        server metadata (name, version, extensions)
    GET  /v2/health/live | /v2/health/ready         200, or 503 with the reasons
    GET  /v2/models/{m}[/versions/{v}]              metadata from the registered schema
    GET  /v2/models/{m}[/versions/{v}]/ready        200 when that slot is warm
    POST /v2/models/{m}[/versions/{v}]/infer        JSON or binary tensors -> the same predict

`{v}` is the number or tag of the live or a standby slot; any other version is a 404 naming the
ones this replica serves. Every answer carries `model_version` and `id` (the request id, also
in `X-Request-Id`); errors are `{"error": "<problem — fix>"}` with the status of lastgood's
table.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lastgood import __version__
from lastgood.domain.errors import LastGoodError
from lastgood.domain.versions import Column, Version
from lastgood.services.golden_record import OUTPUT_FORM
from lastgood.serving.errors import compact_json, error_headers, json_response, status_for
from lastgood.serving.inputs import field_error
from lastgood.serving.predicting import (
    REQUEST_ID,
    Answer,
    Decoded,
    Predictions,
    find_slot,
    request_id_of,
)
from lastgood.serving.protocols.common import Route3
from lastgood.serving.protocols.oip_outputs import (
    check_requested,
    encode_named_outputs,
    encode_outputs,
)
from lastgood.serving.protocols.oip_records import tensors_to_records
from lastgood.serving.protocols.oip_tensors import InferRequest, datatype_of, decode_request
from lastgood.serving.slots import Slot, SlotState, SlotTable

__all__ = ["error", "owns", "routes"]

PREFIX = "/v2"
DEFAULT_OUTPUT = "predict"  # MLServer's name for a model's one output
EXTENSIONS = ["binary_tensor_data"]


def owns(path: str) -> bool:
    """Whether a path belongs to this protocol (its errors take this protocol's shape)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def error(exc: LastGoodError, request_id: str | None) -> Response:
    """OIP's error shape: one string naming the problem and the fix."""
    return json_response({"error": exc.one_line()}, status_for(exc),
                         error_headers(exc, request_id))


def output_column(version: Version) -> Column | None:
    """The registered column of the model's one output, if the schema names it."""
    return version.schema.outputs[0] if version.schema.outputs else None


def output_name(version: Version) -> str:
    column = output_column(version)
    return column.name if column is not None else DEFAULT_OUTPUT


def _tensor_meta(column: Column) -> dict[str, Any]:
    return {"name": column.name, "datatype": datatype_of(column),
            "shape": [-1, *column.shape]}


def metadata(model: str, slot: Slot, table: SlotTable) -> dict[str, Any]:
    """Model metadata: inputs and the output from the version's registered schema."""
    version = slot.version
    column = output_column(version)
    output = _tensor_meta(column) if column is not None else {
        "name": DEFAULT_OUTPUT, "datatype": "BYTES", "shape": [-1]}
    held = [s for s in (table.live, *table.standby.values()) if s is not None]
    return {"name": model, "versions": [str(s.number) for s in held],
            "platform": f"lastgood_{version.flavor}",
            "inputs": [_tensor_meta(c) for c in version.schema.inputs], "outputs": [output]}


class OpenInference:
    """The OIP handlers, translating onto the shared `Predictions` call."""

    def __init__(self, core: Predictions) -> None:
        self.core = core

    async def server(self, request: Request) -> Response:
        return json_response({"name": "lastgood", "version": __version__,
                              "extensions": EXTENSIONS})

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        reasons = self.core.state.unready()
        if reasons:
            return json_response({"ready": False, "error": "; ".join(reasons)}, 503,
                                 {"Retry-After": "1"})
        return json_response({"ready": True})

    def _slot(self, request: Request) -> tuple[str, Slot, SlotTable]:
        """The warm slot the path names, without entering it (metadata reads no predictor)."""
        name = request.path_params["name"]
        table = self.core.state.served(name)
        ref = request.path_params.get("version")
        slot = find_slot(table, ref)
        return name, slot, table

    async def model(self, request: Request) -> Response:
        try:
            name, slot, table = self._slot(request)
        except LastGoodError as exc:
            return error(exc, None)
        return json_response(metadata(name, slot, table))

    async def model_ready(self, request: Request) -> Response:
        try:
            name, slot, _ = self._slot(request)
        except LastGoodError as exc:
            return error(exc, None)
        return json_response({"name": name, "ready": slot.state is SlotState.WARM})

    async def infer(self, request: Request) -> Response:
        name = request.path_params["name"]
        request_id = request_id_of(request)
        decode = partial(_decode, request.headers.get("inference-header-content-length"))
        try:
            answer = await self.core.answer(request, name, decode, request_id=request_id,
                                            version=request.path_params.get("version"))
            return _render(answer)
        except LastGoodError as exc:
            return error(exc, request_id)


def named_outputs(version: Version) -> bool:
    """Whether the model answers several named outputs (a graph's, a DataFrame's columns)."""
    return version.provenance.get(OUTPUT_FORM, "") in ("dict", "frame")


def _decode(header_length: str | None, body: bytes, version: Version) -> Decoded:
    request = decode_request(body, header_length)
    if request.id is not None and not REQUEST_ID.match(request.id):
        raise field_error("id", "expected 1 to 64 of A-Z a-z 0-9 . _ : -",
                          "send a shorter id without spaces, or none")
    if not named_outputs(version):  # several outputs are checked once the model named them
        check_requested(request, output_name(version))
    return Decoded(tensors_to_records(request.inputs, version), path="inputs",
                   request_id=request.id, extra=request, params=request.params,
                   params_path="parameters")


def mlflow_shaped(version: Version) -> bool:
    """Whether the version's outputs are shaped as MLServer's MLflow runtime shapes them (one
    value per record as [N, 1]): a version from an MLflow directory (its MLmodel file at the
    root, or its reference answer recorded at registration)."""
    return bool(version.provenance.get(OUTPUT_FORM, "")) or any(
        f.path == "MLmodel" for f in version.manifest.files)


def _render(answer: Answer) -> Response:
    request: InferRequest = answer.decoded.extra
    version = answer.version
    column = mlflow_shaped(version)
    if named_outputs(version) and all(isinstance(p, dict) for p in answer.predictions):
        outputs = encode_named_outputs(answer.predictions, version.schema.outputs, request,
                                       as_column=column)
    else:
        outputs = encode_outputs(output_name(version), answer.predictions,
                                 output_column(version), request, as_column=column)
    head = compact_json({"model_name": answer.model, "model_version": str(version.number),
                         "id": answer.request_id, "outputs": [o.header for o in outputs]}
                        ).encode()
    headers = {"X-Model-Version": str(version.number), "X-Request-Id": answer.request_id}
    blobs = [o.blob for o in outputs if o.blob is not None]
    if not blobs:
        return Response(head, media_type="application/json", headers=headers)
    headers["Inference-Header-Content-Length"] = str(len(head))
    return Response(b"".join([head, *blobs]), media_type="application/octet-stream",
                    headers=headers)


def routes(core: Predictions) -> list[Route3]:
    """The OIP routes, each in its plain and its `/versions/{version}` form."""
    oip = OpenInference(core)
    found: list[Route3] = [(PREFIX, oip.server, "GET"),
                           (f"{PREFIX}/health/live", oip.live, "GET"),
                           (f"{PREFIX}/health/ready", oip.ready, "GET")]
    for base in (f"{PREFIX}/models/{{name}}", f"{PREFIX}/models/{{name}}/versions/{{version}}"):
        found += [(base, oip.model, "GET"), (f"{base}/ready", oip.model_ready, "GET"),
                  (f"{base}/infer", oip.infer, "POST")]
    return found
