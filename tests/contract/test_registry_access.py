"""Token and signing-key repositories under contract: memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lastgood.domain.access import ApiToken, Role, SigningKey
from lastgood.domain.errors import AlreadyExists, NotFound
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing import EPOCH


def token(token_id: str, **kw: object) -> ApiToken:
    fields: dict[str, object] = {"owner": "alice", "role": Role.OPERATOR,
                                 "token_hash": (token_id * 64)[:64], "created_at": EPOCH,
                                 "created_by": "root"} | kw
    return ApiToken(id=token_id, **fields)  # type: ignore[arg-type]


def key(name: str) -> SigningKey:
    return SigningKey(name=name, public_key="A" * 43 + "=", fingerprint="0" * 16,
                      created_at=EPOCH, created_by="root")


def test_tokens_round_trip_and_are_found_by_hash(registry: UnitOfWorkFactory) -> None:
    expiring = token("b", role=Role.VIEWER, expires_at=EPOCH + timedelta(days=1))
    with registry() as uow:
        uow.tokens.add(token("a"))
        uow.tokens.add(expiring)
        uow.commit()
    with registry() as uow:
        assert uow.tokens.by_hash(expiring.token_hash) == expiring
        assert uow.tokens.by_hash("f" * 64) is None
        assert [t.id for t in uow.tokens.list()] == ["a", "b"]
        assert uow.tokens.get("a") == token("a")


def test_a_token_id_is_never_reused(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.tokens.add(token("a"))
        uow.commit()
    with registry() as uow, pytest.raises(AlreadyExists):
        uow.tokens.add(token("a", token_hash="e" * 64))


def test_revoking_is_durable_and_keeps_the_first_time(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.tokens.add(token("a"))
        first = uow.tokens.revoke("a", at=EPOCH + timedelta(hours=1))
        uow.tokens.revoke("a", at=EPOCH + timedelta(hours=2))
        uow.commit()
    with registry() as uow:
        assert uow.tokens.get("a").revoked_at == first.revoked_at == EPOCH + timedelta(hours=1)
        with pytest.raises(NotFound, match="token list"):
            uow.tokens.revoke("zz", at=EPOCH)


def test_uncommitted_tokens_are_discarded(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.tokens.add(token("a"))
    with registry() as uow:
        assert uow.tokens.list() == []


def test_keys_are_unique_by_name(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.keys.add(key("release"))
        uow.keys.add(key("ci"))
        uow.commit()
    with registry() as uow:
        assert [k.name for k in uow.keys.list()] == ["ci", "release"]
        assert uow.keys.get("release") == key("release")
        with pytest.raises(AlreadyExists, match="release"):
            uow.keys.add(key("release"))
        with pytest.raises(NotFound, match="known keys: ci, release"):
            uow.keys.get("other")
