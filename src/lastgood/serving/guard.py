"""The prediction API's own token: with LASTGOOD_SERVE_TOKEN set, `/v1/...`, `/v2/models/...` and
`/invocations` need `Authorization: Bearer <that token>`; health, readiness, metrics and the
protocols' probes (`/v2`, `/v2/health/...`, `/ping`, `/health`, `/version`) stay open.

It is a separate secret from the control plane's tokens: the services that call a model need not
(and should not) hold a token that could deploy or roll one back. A refused request never reaches
the gateway, so it is not counted in the metrics that drive rollbacks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

GUARDED_PREFIXES = ("/v1/", "/v2/models", "/invocations")
AppWrapper = Callable[[Starlette], Starlette]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class PredictionToken:
    """ASGI middleware refusing `/v1/...` requests without the prediction token (401)."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app, self._expected = app, _digest(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GUARDED_PREFIXES) \
                or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "Unauthorized",
                           "message": "the prediction API needs its token",
                           "fix": "send `Authorization: Bearer <LASTGOOD_SERVE_TOKEN>`",
                           "details": {}}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), b"")
        scheme, _, secret = header.decode("latin-1").partition(" ")
        # compare digests in constant time, so timing tells nothing about the token
        return scheme.lower() == "bearer" and hmac.compare_digest(_digest(secret.strip()),
                                                                  self._expected)


def require_token(app: Starlette, *, token: str) -> Starlette:
    """`app` with the prediction token required (an AppWrapper; picklable via partial)."""
    app.add_middleware(PredictionToken, token=token)
    app.state.guarded_prefixes = GUARDED_PREFIXES  # its /openapi.json says so
    return app


def chain(app: Starlette, *, wrappers: Sequence[AppWrapper]) -> Starlette:
    """Apply several AppWrappers in order (picklable via partial when they are)."""
    for wrap in wrappers:
        app = wrap(app)
    return app
