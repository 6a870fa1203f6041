"""Access control on the in-memory registry: tokens stored hashed, authentication refusals,
the role table, and every denial written to the audit trail with outcome "refused"."""

from __future__ import annotations

import pytest

from lastgood.domain.access import REQUIRED_ROLE, Action, Role, allows
from lastgood.domain.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from lastgood.services.access import AccessService, hash_token, parse_lifetime
from lastgood.testing import FixedClock
from lastgood.testing.memory import MemoryRegistry


@pytest.fixture
def registry() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def access(registry: MemoryRegistry, clock: FixedClock) -> AccessService:
    return AccessService(uow=registry, clock=clock)


def refusals(registry: MemoryRegistry) -> list[tuple[str, str, str]]:
    with registry() as uow:
        return [(e.action, e.actor, e.draft.reason) for e in uow.events.list()
                if e.draft.outcome == "refused"]


def test_a_token_is_stored_as_its_hash_and_never_as_the_secret(
        access: AccessService, registry: MemoryRegistry) -> None:
    issued = access.create_token("alice", role=Role.OPERATOR, actor="root")
    assert issued.secret.startswith(f"lgt_{issued.record.id}_")
    with registry() as uow:
        stored = uow.tokens.get(issued.record.id)
        events = uow.events.list()
    assert stored.token_hash == hash_token(issued.secret) != issued.secret
    assert issued.secret not in repr(stored)
    assert [e.action for e in events] == ["token.created"]
    assert issued.secret not in str(events[0].draft)
    assert stored.token_hash not in str(events)


def test_authenticate_returns_the_owner_and_role(access: AccessService) -> None:
    issued = access.create_token("ci-bot", role=Role.VIEWER, actor="root")
    principal = access.authenticate(issued.secret)
    assert (principal.owner, principal.role, principal.token_id) == (
        "ci-bot", Role.VIEWER, issued.record.id)


@pytest.mark.parametrize(("secret", "reason"), [
    (None, "no API token given"), ("", "no API token given"),
    ("lgt_000000000000_forged", "unknown API token"), ("x" * 5000, "unknown API token")])
def test_missing_and_unknown_tokens_are_refused_and_audited(
        access: AccessService, registry: MemoryRegistry, secret: str | None, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason):
        access.authenticate(secret, request="GET /api/v1/models")
    assert refusals(registry) == [("auth.refused", "anonymous", reason)]


def test_an_expired_token_is_refused_with_its_owner_as_actor(
        access: AccessService, registry: MemoryRegistry, clock: FixedClock) -> None:
    issued = access.create_token("bob", role=Role.ADMIN, actor="root", expires_in_s=3600)
    assert access.authenticate(issued.secret).owner == "bob"
    clock.advance(3600)
    with pytest.raises(Unauthorized, match="expired"):
        access.authenticate(issued.secret)
    assert refusals(registry)[0][:2] == ("auth.refused", "bob")


def test_a_revoked_token_is_refused_and_revoking_twice_keeps_the_first_time(
        access: AccessService, registry: MemoryRegistry, clock: FixedClock) -> None:
    issued = access.create_token("carol", role=Role.OPERATOR, actor="root")
    first = access.revoke_token(issued.record.id, actor="root")
    clock.advance(60)
    again = access.revoke_token(issued.record.id, actor="root")
    assert first.revoked_at == again.revoked_at is not None
    with pytest.raises(Unauthorized, match="revoked"):
        access.authenticate(issued.secret)
    with registry() as uow:
        assert [e.action for e in uow.events.list()].count("token.revoked") == 1


def test_revoking_an_unknown_token_is_not_found(access: AccessService) -> None:
    with pytest.raises(NotFound, match="token list"):
        access.revoke_token("nope", actor="root")


def test_roles_include_the_ones_below() -> None:
    assert all(allows(Role.ADMIN, a) for a in Action)
    assert {a for a in Action if allows(Role.VIEWER, a)} == {Action.READ, Action.PLAN}
    assert not allows(Role.OPERATOR, Action.MANAGE_TOKENS)
    assert allows(Role.OPERATOR, Action.ROLLBACK)
    assert set(REQUIRED_ROLE) == set(Action)


def test_a_forbidden_action_is_audited_with_the_token_owner_as_actor(
        access: AccessService, registry: MemoryRegistry) -> None:
    viewer = access.authenticate(access.create_token("vic", role=Role.VIEWER,
                                                     actor="root").secret)
    access.authorize(viewer, Action.PLAN, model="fraud", env="production")
    with pytest.raises(Forbidden, match="viewer role; rollback needs operator"):
        access.authorize(viewer, Action.ROLLBACK, model="fraud", env="production",
                         request="POST /api/v1/models/fraud/rollback")
    with registry() as uow:
        event = uow.events.list()[-1]
    assert (event.action, event.actor, event.draft.model, event.draft.env, event.draft.outcome) \
        == ("rollback.refused", "vic", "fraud", "production", "refused")
    assert event.draft.evidence["needs"] == "operator"
    assert event.draft.evidence["request"] == "POST /api/v1/models/fraud/rollback"


@pytest.mark.parametrize("owner", ["", "a b", "-x", "x" * 200, "a/b"])
def test_bad_owners_are_refused(access: AccessService, owner: str) -> None:
    with pytest.raises(InvalidInput, match="owner"):
        access.create_token(owner, role=Role.VIEWER, actor="root")


def test_token_lifetimes() -> None:
    assert parse_lifetime("90d") == 90 * 86400
    assert parse_lifetime("12h") == 12 * 3600
    assert parse_lifetime("30m") == 1800
    assert parse_lifetime("2") == 2 * 86400
    assert parse_lifetime("never") is None
    for bad in ("-1d", "0", "soon", "1e400d", "nan"):
        with pytest.raises(InvalidInput, match="lifetime"):
            parse_lifetime(bad)


def test_an_absurd_lifetime_is_refused_by_the_service(access: AccessService) -> None:
    with pytest.raises(InvalidInput, match="lifetime"):
        access.create_token("x", role=Role.VIEWER, actor="root", expires_in_s=1e12)
    with pytest.raises(InvalidInput, match="lifetime"):
        access.create_token("x", role=Role.VIEWER, actor="root", expires_in_s=0)
