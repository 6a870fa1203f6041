"""Who am I; API tokens (admin); signing keys (public halves: list for all, add for admins)."""

from __future__ import annotations

from fastapi.responses import Response

from lastgood.api.common import ok, router
from lastgood.api.deps import CallerDep, ServicesDep
from lastgood.api.schemas import KeyIn, KeyOut, TokenCreatedOut, TokenIn, TokenOut, WhoamiOut
from lastgood.domain.access import Action, Role
from lastgood.services.views import key_view, token_view

routes = router("access")


@routes.get("/whoami", response_model=WhoamiOut)
def whoami(caller: CallerDep) -> Response:
    """The token's owner (the actor in the audit trail) and role."""
    return ok({"owner": caller.principal.owner, "role": caller.principal.role.label})


@routes.post("/tokens", response_model=TokenCreatedOut, status_code=201)
def create_token(body: TokenIn, caller: CallerDep, services: ServicesDep) -> Response:
    """Issue a token; its secret is in this response only (admin)."""
    caller.allow(Action.MANAGE_TOKENS)
    issued = services.access.create_token(body.owner, role=Role.parse(body.role),
                                          actor=caller.actor, expires_in_s=body.expires_in_s)
    return ok(token_view(issued.record) | {"token": issued.secret}, 201)


@routes.get("/tokens", response_model=list[TokenOut])
def list_tokens(caller: CallerDep, services: ServicesDep) -> Response:
    """Every token's record (never a secret or hash) (admin)."""
    caller.allow(Action.MANAGE_TOKENS)
    return ok([token_view(t) for t in services.access.tokens()])


@routes.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, caller: CallerDep, services: ServicesDep) -> Response:
    """Revoke a token for good (admin)."""
    caller.allow(Action.MANAGE_TOKENS)
    return ok(token_view(services.access.revoke_token(token_id, actor=caller.actor)))


@routes.get("/keys", response_model=list[KeyOut])
def list_keys(caller: CallerDep, services: ServicesDep) -> Response:
    """Every signing key's public half."""
    caller.allow(Action.READ)
    return ok([key_view(k) for k in services.signing.public_keys()])


@routes.post("/keys", response_model=KeyOut, status_code=201)
def add_key(body: KeyIn, caller: CallerDep, services: ServicesDep) -> Response:
    """Record a public key made where the signing happens (admin)."""
    caller.allow(Action.MANAGE_KEYS)
    return ok(key_view(services.signing.add_key(body.name, body.public_key,
                                                actor=caller.actor)), 201)
