"""The one predict call behind every protocol: take a slot, decode, check, predict, count.

A protocol is a thin translation at the serving face: it reads its wire format into records
(`Decode`), calls `Predictions.answer`, and renders the `Answer` (or the error) in its own
shape. Everything that makes requests comparable lives here, once: the slot a request keeps
to its end, the input check against the answering version's schema, the thread pool, the
per-version counters, latency histogram, sampled evidence and the request id that feedback
refers to. Bad input is counted apart (`rejected`), never as a model error.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from lastgood.domain.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from lastgood.domain.versions import Version
from lastgood.ports import Clock, Predictor
from lastgood.services.http_statuses import error_name
from lastgood.serving.batching import Batcher
from lastgood.serving.blame import Blame, BlameOptions
from lastgood.serving.errors import ModelFailed, compact_json
from lastgood.serving.inputs import MalformedBody, NoDefaultModel, as_mismatch, check_records
from lastgood.serving.loading import plain
from lastgood.serving.params import checked_params
from lastgood.serving.reservoir import Kept
from lastgood.serving.slots import Slot, SlotTable
from lastgood.serving.state import NotServing, ServingState

__all__ = ["REQUEST_ID", "Answer", "Decode", "Decoded", "Predictions", "find_slot", "read_body",
           "request_id_of"]

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
Records = list[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a protocol read from a body: the records, how to name them in errors, and
    whatever its renderer needs back (requested outputs, binary flags)."""

    records: Records
    path: str = "records"
    request_id: str | None = None  # a protocol's own id (OIP `id`), when the body carries one
    extra: Any = None
    params: Any = None  # inference params as sent (checked against the version's schema)
    params_path: str = "params"  # how the protocol names them in errors


Decode = Callable[[bytes, Version], Decoded]
"""Turn a body into records for the version that will answer (its schema names the columns)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A served prediction: who answered, under which request id, what it said."""

    model: str
    version: Version
    request_id: str
    predictions: list[Any]
    decoded: Decoded = field(repr=False, default_factory=lambda: Decoded([]))


def request_id_of(request: Request) -> str:
    """The caller's X-Request-Id when it is sane, else a fresh one."""
    incoming = request.headers.get("x-request-id", "")
    return incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _too_large(limit: int, declared: str = "") -> PayloadTooLarge:
    size = f"has {declared} bytes, over" if declared else "is over"
    return PayloadTooLarge(f"the body {size} the {limit} byte limit",
                           fix="send fewer records per request")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with PayloadTooLarge as soon as it passes `limit` bytes; a gzip or
    deflate Content-Encoding is undone, and its output held to the same limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, declared)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return _decoded(b"".join(chunks), request.headers.get("content-encoding", ""), limit)


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported",
                                   fix="send the body uncompressed, gzip or deflate")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if coding == "gzip" else 0))
    try:
        out = inflater.decompress(body, limit + 1)  # a bounded read: no decompression bomb
    except zlib.error as exc:
        raise MalformedBody(f"the {coding} body does not decompress ({exc})",
                            fix=f"send a valid {coding} stream, or no Content-Encoding") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    return out


def find_slot(table: SlotTable, ref: str | None) -> Slot:
    """The live slot, or the live/standby slot whose number or tag is `ref` (not entered)."""
    if ref is None:
        if table.live is None:
            raise NotServing(f"model {table.model!r} has no warm version on this replica yet",
                             fix="retry shortly; GET /readyz says what is still loading")
        return table.live
    held = [s for s in (table.live, *table.standby.values()) if s is not None]
    found = next((s for s in held if str(s.number) == ref or s.version.tag == ref), None)
    if found is None:
        served = ", ".join(f"{s.number}" + (" (live)" if s is table.live else " (standby)")
                           for s in held) or "none yet"
        raise NotFound(f"version {ref!r} of {table.model!r} is not served by this replica",
                       fix=f"ask for one it serves: {served}")
    return found


class Predictions:
    """The shared predict call of one replica, bound to its state."""

    def __init__(self, state: ServingState, *, clock: Clock, threads: int,
                 inline_below_ms: float, max_body_bytes: int,
                 default_model: str | None = None,
                 blame: BlameOptions | None = None) -> None:
        self.state, self.clock = state, clock
        self.blame = Blame(state, blame)  # model errors replayed on the way back
        self.inline_below_ms, self.max_body_bytes = inline_below_ms, max_body_bytes
        self.default_model = default_model
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lastgood-predict")
        self._batchers: dict[int, Batcher] = {}  # by id of the predictor it feeds

    def model_for_unnamed_route(self) -> str:
        """The model a route without a name serves: `--default-model`, or the only one."""
        if self.default_model:
            return self.default_model
        served = sorted(self.state.deployed if self.state.deployed is not None
                        else self.state.tables)
        if len(served) == 1:
            return served[0]
        if not served:
            raise NotServing(f"no model is served in {self.state.env!r} yet",
                             fix="deploy a model to this environment, then retry")
        raise NoDefaultModel(
            f"this replica serves {len(served)} models ({', '.join(served)}) and the route "
            "names none", fix="start `lastgood serve` with --default-model NAME, or POST to "
                              "/v1/models/NAME/predict or /v2/models/NAME/infer")

    async def answer(self, request: Request, model: str, decode: Decode, *,
                     request_id: str, version: str | None = None) -> Answer:
        """Predict for one request on the live slot (or version `version`, live or standby).

        Raises LastGoodError: NotFound/NotServing before anything is counted, InvalidInput
        (counted as rejected, never as a model error), ModelFailed (counted as a model error).
        """
        table = self.state.served(model)  # an unknown name is not counted: names are unbounded
        try:
            body = await read_body(request, self.max_body_bytes)
        except InvalidInput as exc:
            self.state.recorder.rejected(model, error_name(exc))
            raise
        slot = find_slot(table, version)
        live = slot is table.live
        slot.enter()  # no await since it was found: a switch cannot slip in between
        try:
            answer = await self._on_slot(slot, model, body, decode, request_id)
        finally:
            slot.leave()
        if live:  # only the live version's answers are what standbys are compared with
            self.state.reservoirs.offer(model, Kept(answer.decoded.records, answer.predictions,
                                                    slot.number, time.monotonic()),
                                        size_bytes=len(body))
        return answer

    async def _on_slot(self, slot: Slot, model: str, body: bytes, decode: Decode,
                       request_id: str) -> Answer:
        try:
            decoded = decode(body, slot.version)
            check_records(decoded.records, slot.version.schema.inputs, path=decoded.path)
            params = checked_params(slot.version.schema.params, decoded.params,
                                    where=decoded.params_path)
        except InvalidInput as exc:
            self.state.recorder.rejected(model, error_name(exc))
            raise as_mismatch(exc) from None
        except (ValueError, TypeError, RecursionError, ArithmeticError) as exc:
            # a decoder's own slip (a number too large to convert, say): bad input
            self.state.recorder.rejected(model, "MalformedBody")
            raise MalformedBody(f"the body is not usable: {str(exc)[:160]}",
                                fix="send the payload this route documents") from None
        rid = decoded.request_id or request_id
        predictions = await self._predict(slot, model, decoded.records, rid, params)
        return Answer(model, slot.version, rid, predictions, decoded)

    async def _predict(self, slot: Slot, model: str, records: Records,
                       request_id: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        start = time.perf_counter()
        try:
            predictions = await (self._run_with(slot, records, params) if params
                                 else self._run(slot, records))
            compact_json(predictions)  # every protocol must be able to send it (no NaN)
        except InvalidInput as exc:  # the model's own input check: still the caller's mistake
            self.state.recorder.rejected(model, error_name(exc))
            raise as_mismatch(exc) from None
        except Exception as exc:
            self.state.recorder.failure(model, slot.number, request_id=request_id,
                                        records=records, error=f"{type(exc).__name__}: {exc}",
                                        seconds=time.perf_counter() - start, at=self.clock.now())
            self.blame.failed(model, slot, request_id, records)
            raise ModelFailed(f"{slot.version.ref} failed: {type(exc).__name__}",
                              fix=f"see /v1/models/{model}/stats; roll back if it persists"
                              ) from None
        self.state.recorder.success(model, slot.number, request_id=request_id, records=records,
                                    predictions=predictions,
                                    seconds=time.perf_counter() - start, at=self.clock.now())
        return predictions

    async def _run(self, slot: Slot, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        predictor = slot.predictor
        if predictor is None:
            raise RuntimeError(f"{slot.version.ref} holds no predictor ({slot.state})")
        estimate = slot.per_record_ms
        if estimate is not None and estimate * len(records) <= self.inline_below_ms:
            return settled(predictor.predict(records), len(records))
        return await self._batcher(predictor).predict(records)

    async def _run_with(self, slot: Slot, records: Sequence[Mapping[str, Any]],
                        params: Mapping[str, Any]) -> list[Any]:
        """A request with inference params runs alone (a batch would mix their values)."""
        call = getattr(slot.predictor, "predict_with_params", None)
        if call is None:
            raise RuntimeError(f"{slot.version.ref} has a params schema its loader cannot pass")
        loop = asyncio.get_running_loop()
        return settled(await loop.run_in_executor(self.pool, call, records, params),
                       len(records))

    def _batcher(self, predictor: Predictor) -> Batcher:
        """The predictor's queue; those of slots long gone are dropped now and then."""
        found = self._batchers.get(id(predictor))
        if found is None or found.predictor is not predictor:
            if len(self._batchers) > 32:
                self._batchers.clear()  # idle queues only cost a lookup to rebuild
            found = self._batchers[id(predictor)] = Batcher(predictor, self.pool, settled)
        return found


def settled(outputs: Any, count: int) -> list[Any]:
    """The model's outputs as a plain list, one per record, or ValueError."""
    result = plain(outputs)
    if not isinstance(result, list) or len(result) != count:
        got = len(result) if isinstance(result, list) else "no list of"
        raise ValueError(f"{count} records gave {got} predictions")
    return result
