"""The live audit stream: poll the event log, emit each new event as a server-sent event.

Polling (every `poll_s`, with `after_seq`) works the same on SQLite and PostgreSQL and keeps no
transaction open between polls; a `: keepalive` comment every `keepalive_s` keeps proxies from
closing an idle connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from lastgood.domain.errors import LastGoodError
from lastgood.services.container import Services
from lastgood.services.views import event_view

BATCH = 200


def frame(view: dict[str, object]) -> str:
    """One `event: audit` message; `id` lets a reconnecting client resume (Last-Event-ID)."""
    return f"id: {view['seq']}\nevent: audit\ndata: {json.dumps(view, default=str)}\n\n"


async def event_stream(request: Request, services: Services, *, after: int,
                       model: str | None, env: str | None, poll_s: float,
                       keepalive_s: float) -> AsyncIterator[str]:
    """Yield every event after `after` as it appears, until the client goes away."""
    last, idle = after, 0.0
    yield "retry: 2000\n\n"
    while not await request.is_disconnected():
        try:
            found = await run_in_threadpool(services.registry.events, model=model, env=env,
                                            after_seq=last, limit=BATCH)
        except LastGoodError:
            found = []  # registry briefly unreachable: keep the stream, try again
        for event in found:
            yield frame(event_view(event))
            last = event.seq
        if len(found) == BATCH:
            continue  # more are waiting: drain before sleeping
        await asyncio.sleep(poll_s)
        idle = 0.0 if found else idle + poll_s
        if idle >= keepalive_s:
            yield ": keepalive\n\n"
            idle = 0.0
