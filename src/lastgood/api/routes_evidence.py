"""Events, the audit chain (verify, export), forensic archives, and the live event stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from lastgood.api.common import ArchivePath, ok, router
from lastgood.api.deps import CallerDep, ServicesDep
from lastgood.api.schemas import ArchiveDetailOut, ArchiveOut, ChainOut, EventOut, Name
from lastgood.api.stream import event_stream
from lastgood.domain.access import Action
from lastgood.services.views import archive_view, chain_view, event_view

routes = router("evidence")
Seq = Annotated[int, Query(ge=0, le=2**62, description="only events after this sequence number")]


@routes.get("/events", response_model=list[EventOut])
def events(caller: CallerDep, services: ServicesDep,
           model: Annotated[Name | None, Query()] = None,
           env: Annotated[Name | None, Query()] = None, after_seq: Seq = 0,
           limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Response:
    """Audit events in chain order, oldest first; page with after_seq."""
    caller.allow(Action.READ, model=model, env=env)
    found = services.registry.events(model=model, env=env, after_seq=after_seq, limit=limit)
    return ok([event_view(e) for e in found])


@routes.get("/audit/verify", response_model=ChainOut)
def audit_verify(caller: CallerDep, services: ServicesDep) -> Response:
    """Walk the hash chain; name the first edited, deleted, inserted or moved event."""
    caller.allow(Action.READ)
    return ok(chain_view(services.audit.verify()))


NDJSON: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}},
          "description": "one JSON event per line, in chain order"}}


@routes.get("/audit/export", response_class=Response, responses=NDJSON)
async def audit_export(caller: CallerDep, services: ServicesDep) -> Response:
    """Every event as JSON Lines (what `lastgood audit export` writes)."""
    caller.allow(Action.READ)
    # Read in one go: a transaction held open for a slow download would block every writer.
    lines = await run_in_threadpool(lambda: list(services.audit.export_lines()))
    body = "".join(line + "\n" for line in lines).encode()
    return Response(body, media_type="application/x-ndjson")


@routes.get("/archives", response_model=list[ArchiveOut])
def archives(caller: CallerDep, services: ServicesDep,
             model: Annotated[Name | None, Query()] = None,
             env: Annotated[Name | None, Query()] = None) -> Response:
    """Forensic bundles, newest first."""
    caller.allow(Action.READ, model=model, env=env)
    return ok([archive_view(a) for a in services.archives.list(model=model, env=env)])


@routes.get("/archives/{archive_id}", response_model=ArchiveDetailOut)
def archive(archive_id: ArchivePath, caller: CallerDep, services: ServicesDep) -> Response:
    """A bundle's record and the names of its members (each verified)."""
    caller.allow(Action.READ)
    record, members = services.archives.show(archive_id)
    return ok(archive_view(record) | {"members": sorted(members)})


TAR: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the bundle, verified against its manifest"}}


@routes.get("/archives/{archive_id}/download", response_class=Response, responses=TAR)
def archive_download(archive_id: ArchivePath, caller: CallerDep, services: ServicesDep) -> Response:
    """The bundle's tar, after every member was checked against its sha256."""
    caller.allow(Action.READ)
    record, data = services.archives.bundle(archive_id)
    return Response(data, media_type="application/x-tar", headers={
        "Content-Disposition": f'attachment; filename="{record.id}.tar"',
        "X-Content-SHA256": record.sha256})


SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "`event: audit` per new event (data: the event view); "
                         "`: keepalive` comments"}}


@routes.get("/stream", response_class=StreamingResponse, responses=SSE)
async def stream(request: Request, caller: CallerDep, services: ServicesDep,
                 model: Annotated[Name | None, Query()] = None,
                 env: Annotated[Name | None, Query()] = None,
                 after_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None
                 ) -> StreamingResponse:
    """Server-sent events: every new audit event as it is committed (viewer)."""
    caller.allow(Action.READ, model=model, env=env)
    if model is not None:
        await run_in_threadpool(services.registry.events, model=model, limit=1)  # 404 early
    start = after_seq if after_seq is not None else _last_event_id(request)
    if start is None:
        start = await run_in_threadpool(services.audit.head)
    options = request.app.state.options
    return StreamingResponse(
        event_stream(request, services, after=start, model=model, env=env,
                     poll_s=options.stream_poll_s, keepalive_s=options.keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _last_event_id(request: Request) -> int | None:
    text = request.headers.get("last-event-id", "")
    return int(text) if text.isdigit() and len(text) < 19 else None

