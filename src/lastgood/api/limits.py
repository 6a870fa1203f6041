"""Request body limits as a plain ASGI middleware: a 413 before a byte too many is buffered.

A declared Content-Length over the limit is refused at once; a body that streams past it (chunked,
or lying about its length) is cut off: the app sees a disconnect and its response is dropped in
favour of the 413.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastgood.api.errors import error_response
from lastgood.domain.errors import PayloadTooLarge
from lastgood.services.http_statuses import status_for

LimitFor = Callable[[str, str], int]
"""(method, path) -> the largest body accepted, in bytes."""

UPLOAD_PATH = re.compile(r"^/api/v1/models/[^/]+/versions/?$")


def limit_for(*, body: int, upload: int) -> LimitFor:
    """Uploads of artifacts may be large; every other body is small JSON."""

    def choose(method: str, path: str) -> int:
        return upload if method == "POST" and UPLOAD_PATH.match(path) else body

    return choose


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer 413 and audit it (before authentication: the actor is not known)."""
    error = PayloadTooLarge(f"the request body is over the limit of {limit} bytes",
                            fix="send less, or raise LASTGOOD_API_MAX_BODY_BYTES "
                                "(LASTGOOD_API_MAX_UPLOAD_BYTES for artifacts) on the server")
    status = status_for(error)
    access = getattr(getattr(scope.get("app"), "state", None), "access", None)
    if access is not None:
        await run_in_threadpool(access.record_refusal, error, "anonymous",
                                f"{scope['method']} {scope['path']}", action="request",
                                status=str(status))
    await error_response("PayloadTooLarge", error.message, error.fix, status)(scope, receive,
                                                                              send)


class BodyLimit:
    """Refuse request bodies over `limit_for(method, path)` bytes with 413."""

    def __init__(self, app: ASGIApp, *, limit_for: LimitFor) -> None:
        self.app, self._limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(limit, scope, receive, send)
            return
        await _Guarded(self.app, limit)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _Guarded:
    """One request whose body is counted as the app reads it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.seen = 0
        self.exceeded = False
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            if self.exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.seen += len(message.get("body", b""))
                if self.seen > self.limit:
                    self.exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.exceeded:
                return  # the app's answer to the cut-off body is replaced by the 413
            self.started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not self.exceeded:
                raise  # a real error: the app's handlers above render it
        if self.exceeded and not self.started:
            await _refuse(self.limit, scope, receive, send)
