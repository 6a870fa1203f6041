"""Per-request dependencies: the services, and the authenticated caller who must be authorised.

Every route depends on `caller`: no token, or a bad one, is a 401 before anything is read.
Routes then call `caller.allow(action, model=..., env=...)`, so a denial names what was tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

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

    @property
    def actor(self) -> str:
        """Who the audit trail names: the token's owner."""
        return self.principal.owner

    def allow(self, action: Action, *, model: str | None = None, env: str | None = None) -> None:
        """Return if the role allows `action`; else Forbidden (403), audited."""
        self.access.authorize(self.principal, action, model=model, env=env,
                              request=self.request)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_caller(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
               ) -> Caller:
    access: AccessService = request.app.state.access
    line = f"{request.method} {request.url.path}"
    secret = credentials.credentials if credentials is not None else None
    return Caller(access.authenticate(secret, request=line), access, line)


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
