"""Per-request dependencies: the services, and the authenticated caller who must be authorised.

Every route depends on `caller`: no token, or a bad one, is a 401 before anything is read.
Routes then call `caller.allow(action, model=..., env=...)`, so a denial names what was tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lastgood.domain.access import Action, Principal
from lastgood.services.access import AccessService
from lastgood.services.container import Services

bearer = HTTPBearer(auto_error=False, description="an API token: `lastgood token create`")


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of one request."""

    principal: Principal
    access: AccessService
    request: str  # "POST /api/v1/models/x/rollback", for the audit trail of a denial
    state: Any  # the request's state: what was asked, for auditing a later refusal

    @property
    def actor(self) -> str:
        """Who the audit trail names: the token's owner."""
        return self.principal.owner

    def allow(self, action: Action, *, model: str | None = None, env: str | None = None) -> None:
        """Return if the role allows `action`; else Forbidden (403), audited."""
        self.state.action, self.state.model, self.state.env = action, model, env
        self.access.authorize(self.principal, action, model=model, env=env,
                              request=self.request)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def authenticate(request: Request) -> Caller:
    """The request's caller from its bearer token (once per request); Unauthorized, audited."""
    known: Caller | None = getattr(request.state, "caller", None)
    if known is not None:
        return known
    access: AccessService = request.app.state.access
    line = f"{request.method} {request.url.path}"
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    caller = Caller(access.authenticate(token, request=line), access, line, request.state)
    request.state.caller = caller
    return caller


def get_caller(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
               ) -> Caller:
    """The dependency every route takes (`bearer` documents the scheme in OpenAPI)."""
    return authenticate(request)


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
